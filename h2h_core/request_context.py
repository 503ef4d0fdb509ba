"""Where a change came from (client IP and request id), carried to the audit log per request."""

from __future__ import annotations

import contextvars
import ipaddress
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class RequestMeta:
    ip: str | None = None
    request_id: str = ""


_current: contextvars.ContextVar[RequestMeta] = contextvars.ContextVar("h2h_request_meta", default=RequestMeta())  # noqa: B039 (frozen)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}\Z")  # \Z: `$` would let "id\n" through


def current() -> RequestMeta:
    return _current.get()


def activate(meta: RequestMeta) -> contextvars.Token:
    return _current.set(meta)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)


@contextmanager
def log_context(*, request_id: str | None = None) -> Iterator[str]:
    """Run the enclosed work (a job, say) under its own request id, and yield it.

    Its log lines and audit events carry the id, as a request's do. An id that is missing or not
    a sane token (letters, digits and `._:-`, at most 64) is replaced by a fresh one.
    """
    if not (request_id and _REQUEST_ID.match(request_id)):
        request_id = uuid.uuid4().hex
    token = activate(RequestMeta(request_id=request_id))
    try:
        yield request_id
    finally:
        reset(token)


def _address(text) -> str | None:
    """Return `text` as a normalised IP address, or None when it is not one."""
    try:
        return str(ipaddress.ip_address(str(text).strip())) if text else None
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """Return the address of the client: what the outermost trusted proxy saw, or REMOTE_ADDR without proxies.

    The one answer for the audit log, django-axes (`AXES_CLIENT_IP_CALLABLE`) and the API's throttles.
    Each proxy appends the address it received the request from to X-Forwarded-For, so only the
    last `H2H_TRUSTED_PROXY_COUNT` entries (REMOTE_ADDR counted as the newest) were written by
    proxies we trust; anything further left is whatever the client sent, and is never read. A chain
    shorter than the proxies configured, or an entry that is not an address, falls back to
    REMOTE_ADDR, which no client can forge.
    """
    remote_addr = request.META.get("REMOTE_ADDR", "")
    hops = getattr(settings, "H2H_TRUSTED_PROXY_COUNT", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops <= 0 or not forwarded:
        return _address(remote_addr)
    chain = [*forwarded.split(","), remote_addr]
    if len(chain) <= hops:
        return _address(remote_addr)
    return _address(chain[-1 - hops]) or _address(remote_addr)


def meta_from_request(request) -> RequestMeta:
    """Build the meta of an HTTP request; a client-supplied request id is kept only if well formed."""
    supplied = request.META.get("HTTP_X_REQUEST_ID", "")
    request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
    return RequestMeta(ip=client_ip(request), request_id=request_id)
