"""Bodies read by the one serializer kept per process say exactly what a serializer of their own says."""

from decimal import Decimal

import pytest
from rest_framework import serializers

from edges.api.serializers.bound import validated
from edges.api.serializers.decisions import DecisionIn
from edges.api.serializers.verdicts import CheckIn

pytestmark = pytest.mark.django_db

GOOD = {"case": 7, "kind": "refund", "amount": "120.50", "currency": "EUR", "rationale": "Charged twice"}

BAD_BODIES = [
    None,
    [],
    "refund",
    {},
    {**GOOD, "amount": 120.5},
    {**GOOD, "amount": "12,50"},
    {**GOOD, "kind": "no_such_kind"},
    {**GOOD, "kind": "not a slug\x00"},
    {**GOOD, "case": 0, "currency": "XXX"},
    {**GOOD, "rationale": ""},
]


def fresh(serializer_class, data):
    """What a serializer of its own gives: (validated data, None) or (None, the error's detail)."""
    serializer = serializer_class(data=data)
    try:
        serializer.is_valid(raise_exception=True)
    except serializers.ValidationError as error:
        return None, error.detail
    return dict(serializer.validated_data), None


def kept(serializer_class, data):
    try:
        return dict(validated(serializer_class, data)), None
    except serializers.ValidationError as error:
        return None, error.detail


@pytest.mark.parametrize("serializer_class", [DecisionIn, CheckIn])
def test_a_good_body_reads_as_a_serializer_of_its_own_reads_it(serializer_class):
    # given a good body
    # when the kept serializer reads it
    data, error = kept(serializer_class, GOOD)
    # then it is what a fresh serializer reads, kind and exact amount included
    assert error is None and (data, error) == fresh(serializer_class, GOOD)
    assert data["kind"].code == "refund" and data["amount"] == Decimal("120.50")


@pytest.mark.parametrize("body", BAD_BODIES, ids=repr)
def test_a_bad_body_is_refused_in_the_words_of_a_serializer_of_its_own(body):
    # given a bad body
    # when the kept serializer reads it
    data, error = kept(DecisionIn, body)
    # then it is refused with the same fields, messages and codes (ErrorDetail compares its code too)
    expected_data, expected_error = fresh(DecisionIn, body)
    assert data is None and expected_data is None
    assert error == expected_error


def test_a_refused_body_leaves_nothing_behind_for_the_next():
    # given the kept serializer has just refused a body on every field
    with pytest.raises(serializers.ValidationError):
        validated(DecisionIn, {"case": "x", "kind": 3, "amount": 1, "currency": "?", "rationale": ""})
    # when a good body follows, then one without the optional currency
    data = validated(DecisionIn, GOOD)
    without_currency = validated(DecisionIn, {key: value for key, value in GOOD.items() if key != "currency"})
    # then each is read on its own
    assert data["case"] == 7 and data["currency"] == "EUR"
    assert without_currency["currency"] == ""
