"""Paging: numbered pages for working lists, a cursor for the ever-growing audit log.

A page number or size that is not a whole number in range is a 400, not silently the default.
"""

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination

MAX_SEQ = 2**63 - 1


class StrictPageSize:
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            message = f"Give a whole number from 1 to {self.max_page_size}."
            raise ValidationError({self.page_size_query_param: [message]})
        return size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            elif parameter["name"] == getattr(self, "page_query_param", None):
                parameter["schema"].update(minimum=1)
        return parameters


class Pages(StrictPageSize, PageNumberPagination):
    """`?page=N&page_size=M` (at most 200); the answer carries `count`, `next` and `previous`.

    `page` is a whole number from 1 (a page past the end is a 404).
    """

    page_size = 50
    max_page_size = 200
    last_page_strings = ()

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ValidationError({self.page_query_param: ["Give a page number from 1."]})
        return raw


class AuditCursor(StrictPageSize, CursorPagination):
    """Newest first by sequence number: stable while new events are appended, and cheap on any page.

    No count: counting a large append-only table is the slow query a cursor avoids.
    """

    ordering = ("-seq",)
    page_size = 100
    max_page_size = 500

    def decode_cursor(self, request):
        """Refuse a cursor whose position is not a sequence number (it would fail in the query, not here)."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                position = int(cursor.position)
            except ValueError:
                raise NotFound(self.invalid_cursor_message) from None
            if not 0 <= position <= MAX_SEQ:
                raise NotFound(self.invalid_cursor_message)
        return cursor
