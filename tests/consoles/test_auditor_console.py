"""The auditor console: read everything, change nothing but one's own review flags."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authority import reports
from authority.errors import AuthorityDenied
from authority.models import AuthorityRequest, Decision, Delegation, Grant, GrantStatus, ReviewFlag
from authority.services import (
    GrantTerms,
    authority_request_approve,
    authority_request_open,
    decision_execute,
    grant_change,
    grant_confirm,
)
from authority.services.oversight import review_flag_create
from h2h_core.errors import NotAllowed
from h2h_core.models import AuditEvent, CustomerTier, Role
from h2h_core.organisation import current_organisation
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, kind, role, successful_audit_events

from .factories import DecisionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(cast):
    """Decisions of several agents, teams, kinds, amounts, customers and days; one refusal."""
    now = timezone.now()
    acme = CustomerFactory(name="Acme Freight", tier=CustomerTier.GOLD)
    rows = {
        "alice_small": DecisionFactory(case=CaseFactory(owner=cast["alice"], team=cast["retention"], customer=acme),
                                       amount=Decimal("40"), executed_at=now - timedelta(days=1)),
        "alice_big": DecisionFactory(case=CaseFactory(owner=cast["alice"], team=cast["retention"]),
                                     amount=Decimal("480"), executed_at=now - timedelta(days=3)),
        "carol_fee": DecisionFactory(case=CaseFactory(owner=cast["carol"], team=cast["billing"], customer=acme),
                                     kind=kind("fee_waiver"), amount=Decimal("90"),
                                     executed_at=now - timedelta(days=10)),
        "erin_old": DecisionFactory(case=CaseFactory(owner=cast["erin"], team=cast["onboarding"]),
                                    amount=Decimal("200"), executed_at=now - timedelta(days=40)),
    }
    case = CaseFactory(owner=cast["bob"], team=cast["retention"])
    with pytest.raises(AuthorityDenied):
        decision_execute(actor=cast["bob"], case=case, kind=kind("refund"), amount="900", currency="EUR",
                         rationale="too much")
    return rows


def ids_on(page):
    return [int(pk) for pk in re.findall(r'href="/audit/decisions/(\d+)/"', page)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["alice_small", "alice_big", "carol_fee", "erin_old"]),
        ({"agent": "alice"}, ["alice_small", "alice_big"]),
        ({"team": "billing"}, ["carol_fee"]),
        ({"kind": "fee_waiver"}, ["carol_fee"]),
        ({"amount_min": "100"}, ["alice_big", "erin_old"]),
        ({"amount_min": "50", "amount_max": "300"}, ["carol_fee", "erin_old"]),
        ({"outcome": "own"}, ["alice_small", "alice_big", "carol_fee", "erin_old"]),
        ({"outcome": "approved"}, []),
        ({"date_from": -5}, ["alice_small", "alice_big"]),
        ({"date_to": -20}, ["erin_old"]),
        ({"customer": "acme"}, ["alice_small", "carol_fee"]),
        ({"case": "alice_big"}, ["alice_big"]),
    ],
    ids=lambda value: str(value),
)
def test_the_decision_log_filters(client, cast, log, params, expected):
    params = dict(params)
    if "team" in params:
        params["team"] = cast[params["team"]].pk
    for key in ("date_from", "date_to"):
        if key in params:
            params[key] = (timezone.localtime(timezone.now(), current_organisation().tz)
                           + timedelta(days=params[key])).date().isoformat()
    if "case" in params:
        params["case"] = log[params["case"]].case.reference
    client.force_login(cast["audrey"])
    page = client.get(reverse("audit:decisions"), params)
    assert page.status_code == 200
    assert ids_on(page.text) == [log[name].pk for name in expected]
    assert f"{len(expected)} decision" in page.text


def test_refusals_are_in_the_log_too(client, cast, log):
    client.force_login(cast["audrey"])
    page = client.get(reverse("audit:decisions"), {"outcome": "refused", "agent": "bob"}).text
    assert "1 refusal" in page and "over your per-case limit" in page
    assert "0 refusals" in client.get(reverse("audit:decisions"), {"outcome": "refused", "agent": "alice"}).text
    assert "1 refusal" in client.get(reverse("audit:decisions"), {"outcome": "refused",
                                                                  "amount_min": "800"}).text
    assert "0 refusals" in client.get(reverse("audit:decisions"), {"outcome": "refused",
                                                                   "amount_max": "800"}).text


def test_a_value_in_the_log_is_a_link_that_filters_by_it(client, cast, log):
    client.force_login(cast["audrey"])
    page = client.get(reverse("audit:decisions"), {"kind": "refund"}).text
    assert 'href="?kind=refund&amp;agent=alice"' in page
    assert f'href="?kind=refund&amp;customer={log["alice_small"].case.customer_id}"' in page


def test_seek_paging_walks_every_decision_once_both_ways(client, cast, monkeypatch):
    monkeypatch.setattr("edges.auditor.views.PAGE_SIZE", 7)
    case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    moment = timezone.now()
    made = [DecisionFactory(case=case, executed_at=moment - timedelta(minutes=i // 3)) for i in range(20)]
    client.force_login(cast["audrey"])
    seen, pages, url = [], [], reverse("audit:decisions")
    while url:
        page = client.get(url).text
        pages.append(page)
        seen += ids_on(page)
        older = re.search(r'href="\?(after=[^"]+)" rel="next"', page)
        url = reverse("audit:decisions") + "?" + older.group(1).replace("&amp;", "&") if older else None
    assert sorted(seen) == sorted(d.pk for d in made) and len(seen) == 20 and len(pages) == 3
    newer = re.search(r'href="\?(before=[^"]+)" rel="prev"', pages[-1]).group(1).replace("&amp;", "&")
    assert ids_on(client.get(reverse("audit:decisions") + "?" + newer).text) == ids_on(pages[1])


def test_the_count_is_capped_and_says_so(client, cast, log, monkeypatch):
    monkeypatch.setattr(reports.decision_log, "COUNT_CAP", 3)
    client.force_login(cast["audrey"])
    page = client.get(reverse("audit:decisions")).text
    assert "more than 3 decisions" in page


def test_the_log_costs_the_same_queries_for_few_or_many_rows(client, cast, log, django_assert_max_num_queries):
    client.force_login(cast["audrey"])
    client.get(reverse("audit:decisions"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("audit:decisions"))
    for _ in range(60):
        DecisionFactory(case=log["alice_big"].case, agent=cast["alice"], grant=log["alice_big"].grant)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("audit:decisions"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("audit:decisions"), {"outcome": "refused"})


def approved_decision(cast):
    """A real decision through the services: alice asks 1,200, maria approves, alice executes."""
    case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    request = authority_request_open(actor=cast["alice"], case=case, kind=kind("refund"), amount="1200",
                                     currency="EUR", justification="key account")
    authority_request_approve(actor=cast["maria"], request=request, note="fine once")
    return decision_execute(actor=cast["alice"], case=case, kind=kind("refund"), amount="1200", currency="EUR",
                            rationale="outage refund")


def test_a_decision_page_shows_verdict_grant_version_request_approver_and_case(client, cast):
    decision = approved_decision(cast)
    client.force_login(cast["audrey"])
    page = client.get(reverse("audit:decision", args=[decision.pk])).text
    grant = decision.grant
    for expected in (f"#{grant.lineage} v{grant.version}", reverse("audit:grant", args=[grant.pk]),
                     "Covered by one-off grant", "approved</span> by <strong>maria</strong>", "fine once",
                     decision.case.reference, "decision.executed", "authority_request.approved", "outage refund",
                     "Used before", "1,200.00 EUR"):
        assert expected in page, expected


def test_a_grant_page_shows_every_version_with_maker_and_checker(client, cast):
    baseline = Grant.objects.get(subject_role=role(Role.AGENT), kind__code="refund")
    pending = grant_change(actor=cast["maria"], grant=baseline, reason="busy season",
                           terms=GrantTerms(per_case_limit=Decimal("250"), period_limit=Decimal("2500"),
                                            period="month", currency="EUR"))
    grant_confirm(actor=cast["mike"], grant=pending)
    client.force_login(cast["audrey"])
    page = client.get(reverse("audit:grant", args=[pending.pk])).text
    assert "version 2" in page and "maria" in page and "mike" in page
    assert re.search(r'<tr class="changed"><th scope="row">Period cap</th><td>1,000.00 EUR</td><td>2,500.00 EUR',
                     page)
    changes = client.get(reverse("audit:changes"), {"maker": "maria"}).text
    assert "busy season" in changes and "Period cap: 1,000.00 EUR → 2,500.00 EUR" in changes and "mike" in changes


def test_authority_as_of_an_instant_shows_the_version_then_in_force(client, cast):
    alice_grant = Grant.objects.get(subject_user=cast["alice"])
    before_change = timezone.now()
    new = grant_change(actor=cast["maria"], grant=alice_grant, reason="more",
                       terms=GrantTerms(per_case_limit=Decimal("800"), period_limit=Decimal("1500"),
                                        period="month", currency="EUR"))
    client.force_login(cast["audrey"])
    at = timezone.localtime(before_change, current_organisation().tz).strftime("%Y-%m-%dT%H:%M:%S")
    then = client.get(reverse("audit:authority_at"), {"subject": "person", "person": "alice", "at": at}).text
    now = client.get(reverse("audit:authority_at"), {"subject": "person", "person": "alice"}).text
    assert f"#{alice_grant.lineage} v1" in then and "500.00 EUR per case" in then
    assert f"#{new.lineage} v2" in now and "800.00 EUR per case" in now
    assert "role Agent" in now  # through her role
    team = client.get(reverse("audit:authority_at"), {"subject": "team", "team": cast["retention"].pk}).text
    assert "200.00 EUR per case" in team


def test_chain_status_verifies_and_offers_checkpoints_and_key_for_outside_checking(client, cast, settings, tmp_path):
    from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key
    from tests.jobs import run_jobs

    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "key.pem"
    generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)
    approved_decision(cast)
    checkpoint = audit_checkpoint_create()
    client.force_login(cast["audrey"])
    status = client.get(reverse("audit:chain")).text
    assert f"entry {checkpoint.seq}, signed" in status
    # a verification is requested on the page and run by a worker
    client.post(reverse("audit:verify_request"), {"scope": "full"})
    total = AuditEvent.objects.count()
    run_jobs(queues="audit")
    verified = client.get(reverse("audit:verify")).text
    assert f"Audit chain intact: {total} of {total} entries verified" in verified
    assert "signature valid, matches the chain" in verified
    # outside the product: the PEM and the JSON are enough to check the signature
    pem = client.get(reverse("audit:public_key"))
    document = client.get(reverse("audit:checkpoints")).json()
    key = serialization.load_pem_public_key(pem.content)
    row = document["checkpoints"][0]
    key.verify(bytes.fromhex(row["signature"]), row["signed_message"].encode())
    assert row["hash"] == AuditEvent.objects.get(seq=row["seq"]).hash


def test_auditors_write_nothing_but_their_own_review_flags(client, cast):
    request = authority_request_open(actor=cast["alice"], case=CaseFactory(owner=cast["alice"],
                                                                           team=cast["retention"]),
                                     kind=kind("refund"), amount="900", currency="EUR", justification="x")
    pending = GrantFactory(subject_role=role(Role.AGENT), status=GrantStatus.PENDING, granted_by=cast["mike"])
    alice_grant = Grant.objects.get(subject_user=cast["alice"])
    delegation = Delegation.objects.create(manager=cast["maria"], delegate=cast["mike"], starts_at=timezone.now(),
                                           ends_at=timezone.now() + timedelta(days=1), created_at=timezone.now())

    def everything():
        return (successful_audit_events(), Grant.objects.count(), AuthorityRequest.objects.get().status,
                Delegation.objects.get().revoked_at, Decision.objects.count(), ReviewFlag.objects.count())

    client.force_login(cast["audrey"])
    before = everything()
    attempts = [
        ("authority:approve", [request.pk], {"note": "ok"}),
        ("authority:reject", [request.pk], {"note": "no"}),
        ("authority:confirm", [pending.pk], {}),
        ("authority:reject_grant", [pending.pk], {"note": "no"}),
        ("authority:grant_new", [], {"subject": f"user-{cast['alice'].pk}", "kind": "refund", "step": "save",
                                     "effect": "permit", "per_case_limit": "9", "period": "none",
                                     "currency": "EUR", "reason": "x"}),
        ("authority:grant_edit", [alice_grant.pk], {"step": "save", "reason": "x"}),
        ("authority:grant_end", [alice_grant.pk], {"reason": "x"}),
        ("authority:delegations", [], {"delegate": "mike"}),
        ("authority:delegation_revoke", [delegation.pk], {}),
    ]
    for name, args, data in attempts:
        assert client.post(reverse(name, args=args), data).status_code == 403, name
    assert everything() == before


def test_a_review_flag_is_recorded_audited_and_listed(client, cast, log):
    decision = log["alice_big"]
    client.force_login(cast["audrey"])
    page = client.get(reverse("audit:decision", args=[decision.pk])).text
    assert "Flag this decision" in page
    client.post(reverse("audit:flag", args=[decision.pk]), {"severity": "major", "finding": "No rationale given."})
    flag = ReviewFlag.objects.get()
    assert (flag.decision, flag.auditor, flag.severity) == (decision, cast["audrey"], "major")
    event = AuditEvent.objects.get(action="review_flag.created")
    assert event.actor_username == "audrey" and event.object_id == str(decision.pk)
    listed = client.get(reverse("audit:flags")).text
    assert "No rationale given." in listed and "Major" in listed
    assert "No rationale given." in client.get(reverse("audit:decision", args=[decision.pk])).text


def test_only_auditors_flag_and_an_empty_finding_is_refused(client, cast, log):
    decision = log["alice_big"]
    before = (ReviewFlag.objects.count(), successful_audit_events())
    client.force_login(cast["maria"])
    assert client.post(reverse("audit:flag", args=[decision.pk]), {"severity": "minor",
                                                                   "finding": "x"}).status_code == 403
    with pytest.raises(NotAllowed):
        review_flag_create(actor=cast["admin"], decision=decision, severity="minor", finding="x")
    client.force_login(cast["audrey"])
    client.post(reverse("audit:flag", args=[decision.pk]), {"severity": "minor", "finding": "   "})
    client.post(reverse("audit:flag", args=[decision.pk]), {"severity": "fatal", "finding": "x"})
    assert (ReviewFlag.objects.count(), successful_audit_events()) == before


def test_a_review_sample_is_random_sized_and_reproducible(client, cast):
    case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    made = [DecisionFactory(case=case) for _ in range(30)]
    client.force_login(cast["audrey"])
    drawn = client.get(reverse("audit:review"), {"size": "5"})
    assert drawn.status_code == 302 and "seed=" in drawn["Location"]
    first = client.get(drawn["Location"]).text
    again = client.get(drawn["Location"]).text
    assert len(ids_on(first)) == 5 and ids_on(first) == ids_on(again)
    assert set(ids_on(first)) <= {d.pk for d in made}
    assert "5 decisions drawn" in first


def test_sampling_many_rows_draws_by_id_and_stays_within_the_filter(cast, monkeypatch):
    monkeypatch.setattr(reports.changes, "SAMPLE_SMALL", 10)
    case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    now = timezone.now()
    recent = [DecisionFactory(case=case, executed_at=now) for _ in range(40)]
    DecisionFactory.create_batch(20, case=case, executed_at=now - timedelta(days=90))
    wanted = reports.decisions_matching(reports.DecisionFilters(date_from=(now - timedelta(days=1)).date()))
    picked = reports.sample_decisions(wanted, size=12, seed=7)
    assert len(picked) == 12 and set(picked) <= {d.pk for d in recent}
    assert picked == reports.sample_decisions(wanted, size=12, seed=7)
