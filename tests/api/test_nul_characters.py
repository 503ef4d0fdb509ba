"""Text the database cannot store (NUL characters) is a 400 with the error shape, never a 500."""

import pytest

from authority.models import Decision
from tests.factories import GrantFactory

from .helpers import assert_error_shape


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/authority-check/", "/api/v1/decisions/"])
def test_a_kind_with_a_nul_character_is_refused_cleanly(as_alice, alice, case_owned_by_alice, path):
    # given alice may refund
    GrantFactory(subject_user=alice)
    # when a client sends a kind containing a NUL character
    response = as_alice.post(path, {"case": case_owned_by_alice.pk, "kind": "\x00refund", "amount": "10",
                                    "currency": "EUR", "rationale": "x"}, format="json")
    # then it is a 400 naming the field, and nothing was decided
    assert_error_shape(response, 400)
    assert "kind" in response.json()["details"]
    assert Decision.objects.count() == 0
