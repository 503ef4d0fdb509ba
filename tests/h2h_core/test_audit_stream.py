"""Verification's fast path: orjson over raw rows gives the definitional hash for what the product stores."""

from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from h2h_core import request_context
from h2h_core.audit import audit_record, audit_seal
from h2h_core.audit.stream import sealed_rows
from h2h_core.models import AuditEvent

# What services put in an event: text of any script (control characters and quotes included; not
# NUL, which the edges refuse and PostgreSQL cannot store), whole numbers, decimals (stored as
# text), booleans, nulls, nested lists and objects.
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | text
    | st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**6, max_value=10**6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(after=st.dictionaries(text, values, max_size=5), reason=text,
       ip=st.sampled_from([None, "127.0.0.1", "2001:db8::1", "::ffff:10.0.0.1"]))
def test_the_fast_path_hashes_every_stored_event_as_the_definition_does(after, reason, ip):
    # given an event recorded by the product with arbitrary content, from an address, and sealed
    token = request_context.activate(request_context.RequestMeta(ip=ip, request_id="req-1"))
    try:
        with transaction.atomic():
            event = audit_record(actor=None, action="case.note_added", object_type="case", object_id=1,
                                 after=after, reason=reason)
    finally:
        request_context.reset(token)
    audit_seal()
    # when verification streams it, then the fast path alone proves it intact
    row = next(row for row in sealed_rows() if row.pk == event.pk)
    assert row.content_intact and row.fast, (after, reason)


@pytest.mark.django_db
def test_an_altered_row_is_caught_by_both_paths(bypass_audit_triggers):
    # given a sealed event whose reason was rewritten behind the triggers' back
    with transaction.atomic():
        event = audit_record(actor=None, action="case.note_added", object_type="case", object_id=1,
                             after={"amount": Decimal("12.50")}, reason="original")
    audit_seal()
    with bypass_audit_triggers():
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    # when verification streams it, then it is not intact, whichever path looked
    row = next(row for row in sealed_rows() if row.pk == event.pk)
    assert not row.content_intact and not row.fast

