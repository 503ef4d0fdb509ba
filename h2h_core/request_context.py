"""Where a change came from (client IP and request id), carried to the audit log per request."""

from __future__ import annotations

import contextvars
import ipaddress
import re
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None = None
    request_id: str = ""


_current: contextvars.ContextVar[RequestMeta] = contextvars.ContextVar("h2h_request_meta", default=RequestMeta())  # noqa: B039 (frozen)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current() -> RequestMeta:
    return _current.get()


def activate(meta: RequestMeta) -> contextvars.Token:
    return _current.set(meta)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)


def meta_from_request(request, *, trust_forwarded_for: bool = False) -> RequestMeta:
    """Build the meta of an HTTP request; a client-supplied request id is kept only if well formed."""
    supplied = request.META.get("HTTP_X_REQUEST_ID", "")
    request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
    ip = request.META.get("REMOTE_ADDR")
    if trust_forwarded_for and request.META.get("HTTP_X_FORWARDED_FOR"):
        ip = request.META["HTTP_X_FORWARDED_FOR"].split(",")[0].strip()
    try:
        ip = str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        ip = None
    return RequestMeta(ip=ip, request_id=request_id)
