"""Requests read and answers written through one serializer kept per process, for the API's bodies.

A serializer deep-copies and binds its declared fields for every instance, nested serializers'
fields again; for a decision's answer that cost more CPU than writing its audit event, and for a
check's body a tenth of the request. The fields' work depends only on what they are given, so one
bound set can serve every request: `to_representation` and `run_validation` read the fields'
configuration and change nothing. Only for serializers that need nothing per request in their
context (no hyperlinks, nothing per caller, no `instance` or `partial`).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

_KEPT: dict[type[serializers.Serializer], serializers.Serializer] = {}


def _kept(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    serializer = _KEPT.get(serializer_class)
    if serializer is None:
        serializer = _KEPT.setdefault(serializer_class, serializer_class())
    return serializer


def represented(serializer_class: type[serializers.Serializer], instance: Any) -> dict:
    """Return what `serializer_class(instance).data` holds, written by the one instance kept for the class."""
    return _kept(serializer_class).to_representation(instance)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict:
    """Return what `serializer_class(data=data)` validates `data` into, or raise its ValidationError.

    Valid data is read by the kept instance. Invalid data is read again by a serializer of its own,
    which raises the error exactly as `is_valid(raise_exception=True)` words it: bad input is rare,
    and one way of wording errors is kept.
    """
    try:
        return _kept(serializer_class).run_validation(data)
    except serializers.ValidationError:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        raise AssertionError(f"{serializer_class.__name__} accepted what it refused a moment ago") from None
