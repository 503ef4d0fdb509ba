"""Log lines that name the request (or job) they belong to: readable text, or one JSON object a line.

settings.LOGGING puts RequestIdFilter on the console handler and picks the formatter from
LOG_FORMAT (`text`, the default, or `json` for a log collector). The id is the one the response
carries in X-Request-ID and the audit log records, so a line, a response and an audit event can be
matched up. Outside a request it is "-", unless the work runs under `request_context.log_context`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from h2h_core import request_context

NO_REQUEST = "-"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def record_request_id(record: logging.LogRecord) -> str:
    """Return the request id a record belongs to, "-" when none."""
    stamped = getattr(record, "request_id", None)
    if stamped:
        return stamped
    request_id = request_context.current().request_id
    if not request_id:
        # Django logs a 4xx/5xx response after the middleware has left the request's context, with
        # the request attached to the record.
        request_id = getattr(getattr(record, "request", None), "request_id", "")
    return request_id if isinstance(request_id, str) and request_id else NO_REQUEST


class RequestIdFilter(logging.Filter):
    """Stamp every record with `request_id`; it never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = record_request_id(record)
        return True


class TextFormatter(logging.Formatter):
    """Format `time LEVEL logger [request id] message`, for people reading a terminal."""

    def __init__(self, fmt: str = TEXT_FORMAT, **kwargs):
        super().__init__(fmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = record_request_id(record)
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """Format one JSON object a line: time (UTC), level, logger, message, request_id, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": record_request_id(record),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # Newlines inside the message or traceback are escaped by json.dumps: a line stays one record.
        return json.dumps(entry, ensure_ascii=False, default=str)
