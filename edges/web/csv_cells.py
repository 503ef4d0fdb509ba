"""CSV cells a spreadsheet will not run: every CSV the product writes passes its cells through here.

A spreadsheet reads a text cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return
before one) as a formula, so a reason typed as `=HYPERLINK(...)` would run on the auditor's machine
when they open the export. OWASP's advice is to prefix such cells with a single quote, which the
spreadsheet shows as text. Only text is touched: a Decimal, an integer or a date is written as the
number or date it is, so a negative amount stays a number.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(text: str) -> str:
    """Return `text` with a leading `'` when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _blank_none(value: Any) -> Any:
    return "" if value is None else value


def csv_cell(value: Any, plain: Callable[[Any], Any] = _blank_none) -> Any:
    """Turn one value into a safe CSV cell: numbers are written as they are, any text is neutralised.

    Whether a cell is a number is decided on the value as it came from the database, before `plain`
    turns it into text, so a Decimal such as -12.50 is never mistaken for a formula, while text that
    only looks like a number (a reason typed as "-1") is still neutralised.
    """
    cell = plain(value)
    if isinstance(value, bool | int | float | Decimal) or not isinstance(cell, str):
        return cell
    return neutralise_formula(cell)


class _Echo:
    """A file-like object whose write returns what it was given (csv.writer into a generator)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]],
              plain: Callable[[Any], Any] | None = None) -> Iterator[str]:
    """Yield the CSV text of `header` and then of each row, one line at a time, every cell made safe."""
    writer = csv.writer(_Echo())
    yield writer.writerow(list(header))
    for row in rows:
        yield writer.writerow([csv_cell(value, plain or _blank_none) for value in row])
