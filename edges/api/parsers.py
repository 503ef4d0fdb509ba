"""The API's JSON parser: DRF's, refusing bodies nested deeper than any API payload is.

Python's JSON decoder recurses once per level, so a body of a few thousand `[` raises RecursionError,
which is no ValueError and would escape DRF's parser as a 500. A body that still parses a few
hundred levels deep recurses again wherever it is walked (the Idempotency-Key fingerprint, the
serializers, the audit snapshot). No request of this API nests more than a few levels, so the
parser refuses anything deeper than MAX_DEPTH with a 400 `parse_error`, before a view sees it.
Every API view parses JSON with this class (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] and the views
that name their parsers).
"""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32
TOO_DEEP = f"JSON parse error - the body is nested more than {MAX_DEPTH} levels deep."


def nesting_exceeds(value, limit: int) -> bool:
    """Return whether arrays and objects in `value` nest more than `limit` levels (walked without recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if nesting_exceeds(data, MAX_DEPTH):
            raise ParseError(TOO_DEEP)
        return data
