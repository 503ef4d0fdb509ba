"""Template helpers of the manager and auditor consoles."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django import template
from django.utils import timezone

from authority.quantities import format_quantity
from edges.web.charts import duration_text
from h2h_core.organisation import current_organisation

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """'2 d 4 h', '3 h 10 min' or an em dash."""
    return duration_text(value)


@register.filter
def local(value: datetime | None, fmt: str = "j M Y H:i") -> str:
    """A moment in the organisation's time zone, e.g. '3 Nov 2026 14:05'."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    from django.utils.dateformat import format as date_format

    return date_format(timezone.localtime(value, current_organisation().tz), fmt)


@register.simple_tag
def refine(params: dict | None, key: str, value) -> str:
    """A query string with the current filters and one more (click a value to filter by it)."""
    merged = {k: v for k, v in (params or {}).items() if k not in (key, "after", "before")}
    merged[key] = value
    return "?" + urlencode(merged)


@register.simple_tag
def qty(value, kind, currency="") -> str:
    """An amount in its kind's unit; 'no limit' when empty. `kind` is an AuthorityKind or a unit."""
    if value in (None, ""):
        return "no limit"
    unit = getattr(kind, "unit", kind)
    return format_quantity(Decimal(str(value)), unit=unit, currency=currency or "")


@register.simple_tag
def diff_value(row: dict, side: str, kind) -> str:
    """One side of a grant difference, as people read it."""
    value = row[side]
    name = row["field"]
    if name in ("per_case_limit", "period_limit"):
        return qty(value, kind, row.get(f"{side}_currency", ""))
    if name in ("scope_categories", "scope_tiers"):
        return ", ".join(str(v).replace("_", " ") for v in value) if value else "all"
    if name == "shadow":
        return "—" if value is None else "shadow (log only)" if value else "live"
    if name in ("valid_from", "valid_until"):
        if value is None:
            return "now" if name == "valid_from" else "open-ended"
        return f"{local(value)} ({current_organisation().tz.key})"
    if value in (None, ""):
        return "—"
    return str(value)


@register.filter
def get(mapping, key):
    if mapping is None:
        return None
    try:
        return mapping.get(key) if hasattr(mapping, "get") else mapping[key]
    except (KeyError, IndexError, TypeError):
        return None


@register.filter
def as_day(value) -> str:
    return value.isoformat() if isinstance(value, date) else ""


@register.filter
def as_json(value) -> str:
    """Pretty JSON of an audit snapshot (before/after), keys sorted."""
    import json

    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
