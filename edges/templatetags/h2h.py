from django import template

from authority.quantities import format_quantity

register = template.Library()


@register.simple_tag
def quantity(value, kind, currency=""):
    """Render an amount in the kind's unit: '1,200.00 EUR', '3 months', '10%'."""
    if value in (None, ""):
        return "no limit"
    from decimal import Decimal

    return format_quantity(Decimal(str(value)), unit=kind.unit, currency=currency or "")
