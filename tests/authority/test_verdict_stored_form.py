"""A verdict's stored form (`Verdict.as_dict`): plain JSON of every field but the consumptions."""

from dataclasses import asdict, fields
from datetime import UTC, date, datetime
from decimal import Decimal

from authority.policy.verdict import Consumption, GrantRef, Verdict
from h2h_core.audit import snapshot_value


def _every_field_set() -> Verdict:
    return Verdict(
        allowed=False, kind="refund", unit="money", amount=Decimal("120.50"), currency="EUR",
        evaluated_at=datetime(2026, 5, 14, 8, 0, 0, 123456, tzinfo=UTC),
        reasons=["Over your limit of 100.00 EUR per case.", "A second reason."],
        deciding_grants=[GrantRef(id=7, lineage=3, version=2, level="team", effect="permit", subject="Team Blue"),
                         GrantRef(id=9, lineage=9, version=1, level="personal", effect="permit", subject="alice")],
        level="team", suspended=False, via_one_off=11, counted_amount=Decimal("130.00"), counted_currency="USD",
        rate=Decimal("1.0788000000"), rate_date=date(2026, 5, 13), per_case_limit=Decimal("100"),
        per_case_used=Decimal("0.00"), per_case_headroom=Decimal("100.00"), period="month",
        period_limit=Decimal("1000"), period_used=Decimal("950"), period_headroom=Decimal("50"),
        period_resets_at=datetime(2026, 6, 1, 0, 0, tzinfo=UTC), approvers=["maria", "mark"],
        approvers_are_fallback=True, no_approver="",
        consumptions=[Consumption(key="c:1:refund:EUR", scope="case", amount=Decimal("120.50"),
                                  cap=Decimal("100"), currency="EUR")],
    )


def test_the_stored_form_is_every_field_but_the_consumptions_as_plain_json():
    # given a verdict with every field set, the consumptions included
    verdict = _every_field_set()

    # when it is stored
    stored = verdict.as_dict()

    # then it is what snapshot_value makes of dataclasses.asdict, without the consumptions
    expected = asdict(verdict)
    expected.pop("consumptions")
    assert stored == snapshot_value(expected)
    assert set(stored) == {f.name for f in fields(Verdict)} - {"consumptions"}
    assert stored["deciding_grants"][0] == {"id": 7, "lineage": 3, "version": 2, "level": "team",
                                            "effect": "permit", "subject": "Team Blue"}
    assert stored["amount"] == "120.5" and stored["evaluated_at"] == "2026-05-14T08:00:00.123456Z"


def test_the_stored_form_shares_no_list_with_the_verdict():
    # given a verdict
    verdict = _every_field_set()

    # when its stored form is changed
    stored = verdict.as_dict()
    stored["reasons"].append("added later")
    stored["approvers"].clear()

    # then the verdict is not
    assert verdict.reasons == ["Over your limit of 100.00 EUR per case.", "A second reason."]
    assert verdict.approvers == ["maria", "mark"]
