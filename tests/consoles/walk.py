"""Walk every URL of the product: the resolver's patterns, with real object ids filled in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver

PERSONAS = ("anonymous", "agent", "manager", "auditor", "superuser")
CATCH_ALL_PROBE = "no-such-page/"


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name", or "<unnamed> route" for patterns without a name
    path: str  # the concrete path to request


def _join(namespace: str | None, name: str | None) -> str | None:
    if name is None:
        return None
    return f"{namespace}:{name}" if namespace else name


def patterns(resolver=None, prefix: str = "", namespace: str | None = None):
    """Yield (name, route template, pattern) for every leaf pattern of the URL configuration."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(part for part in (namespace, pattern.namespace) if part) or None
            yield from patterns(pattern, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = _join(namespace, pattern.name)
            if name is None and pattern.pattern.regex.match(CATCH_ALL_PROBE):
                # A catch-all (the API's or the admin's 404): keyed by where it sits, not by its regex.
                yield f"<catch-all> {prefix}", prefix + CATCH_ALL_PROBE, pattern
            else:
                yield name, prefix + str(pattern.pattern), pattern


def _admin_model(route: str):
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    if not match:
        return None
    for model in admin.site._registry:
        if (model._meta.app_label, model._meta.model_name) == match.groups():
            return model
    return None


def fill(name: str | None, route: str, values: dict) -> str:
    """Turn a route template ('cases/<int:pk>/', regexes too) into a concrete path."""
    model = _admin_model(route)

    def value_for(key: str) -> str:
        if key in ("object_id", "id") and model is not None:
            row = model._default_manager.order_by("pk").first()
            return str(row.pk) if row is not None else "999999"
        if key == "content_type_id":
            return str(ContentType.objects.get_for_model(values["view_on_site_model"]).pk)
        if key == "object_id":
            return str(values["view_on_site_object"].pk)
        if key == "app_label":
            return "authority"
        if key == "url":
            return "no-such-page/"
        specific = values.get(f"{name}:{key}")
        return str(specific if specific is not None else values[key])

    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: value_for(m.group(1)), route)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value_for(m.group(1)), path)
    path = path.replace("^", "").replace("$", "").replace("\\", "")
    if path.endswith(".*"):
        path = path[:-2] + "no-such-page/"
    return "/" + path + values.get(f"{name}:query", "")
