"""`{% once_token %}`: the hidden one-time token every state-changing web form carries (see edges.web.once)."""

from django import template
from django.utils.html import format_html

from edges.web.once import FIELD, new_token

register = template.Library()


@register.simple_tag
def once_token():
    """Render a hidden input with a fresh one-time token: the form executes at most once."""
    return format_html('<input type="hidden" name="{}" value="{}">', FIELD, new_token())
