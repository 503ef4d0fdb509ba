"""Keys of usage counters: one per agent period bucket, per case, and per one-off grant."""

from __future__ import annotations

from datetime import date


def period_key(*, agent_id: int, kind_code: str, currency: str, period: str, start: date) -> str:
    return f"p:{agent_id}:{kind_code}:{currency or '-'}:{period}:{start.isoformat()}"


def case_key(*, case_id: int, kind_code: str, currency: str) -> str:
    return f"c:{case_id}:{kind_code}:{currency or '-'}"


def one_off_key(*, grant_id: int) -> str:
    return f"g:{grant_id}"
