"""Answers written through one serializer kept per process, for the API's hottest answers.

A serializer deep-copies and binds its declared fields for every instance, nested serializers'
fields again; for a decision's answer that cost more CPU than writing its audit event. The fields'
output depends only on the object written, so one bound set can serve every request: `to_representation`
reads the fields' configuration and changes nothing. Only for output serializers that need no request
in their context (no hyperlinks, nothing per caller).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

_KEPT: dict[type[serializers.Serializer], serializers.Serializer] = {}


def represented(serializer_class: type[serializers.Serializer], instance: Any) -> dict:
    """Return what `serializer_class(instance).data` holds, written by the one instance kept for the class."""
    serializer = _KEPT.get(serializer_class)
    if serializer is None:
        serializer = _KEPT.setdefault(serializer_class, serializer_class())
    return serializer.to_representation(instance)
