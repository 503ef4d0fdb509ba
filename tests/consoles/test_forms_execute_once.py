"""Every form of the web UI that changes state carries a one-time token, so it executes at most once.

The walk opens every page of the agent workspace and of the two consoles as each persona, plus the
pages that only a POST renders (the review steps, a refused decision), and reads every
`<form method="post">`: each carries the token, or says it changes nothing (`data-changes-nothing`:
a review step, which only restates what would happen). A new form without either fails here.
The admin, the API, login/logout and the customer's public rating page keep their own ways.
"""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from authority.models import Delegation, Grant, GrantStatus
from authority.services import authority_request_open, decision_execute
from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key
from h2h_core.hand_offs import case_hand_off
from h2h_core.models import CaseStatus, Role
from tests.factories import CaseFactory, GrantFactory, ai_agent, kind, role

from .walk import fill, patterns

pytestmark = pytest.mark.django_db

FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.DOTALL | re.IGNORECASE)
POST = re.compile(r"""method\s*=\s*["']?post""", re.IGNORECASE)
ACTION = re.compile(r"""action\s*=\s*["']([^"']*)""", re.IGNORECASE)
OUT_OF_SCOPE = ("/login/", "/logout/", "/admin/", "/api/")
WEB_UI = ("cases", "authority", "audit")


@pytest.fixture
def desk(cast, settings, tmp_path):
    """Something behind every form: an owned, a queued and a resolved case, a decision, an open
    request, a pending grant change, a delegation and a checkpoint."""
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "audit.pem"
    generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)
    alice, maria, retention = cast["alice"], cast["maria"], cast["retention"]
    owned = CaseFactory(owner=alice, team=retention, status=CaseStatus.OWNED)
    queued = CaseFactory(owner=None, team=retention, status=CaseStatus.QUEUED)
    resolved = CaseFactory(owner=alice, team=retention, status=CaseStatus.RESOLVED, resolved_at=timezone.now())
    decision = decision_execute(actor=alice, case=CaseFactory(owner=alice, team=retention), kind=kind("refund"),
                                amount="100", currency="EUR", rationale="late delivery")
    authority_request_open(actor=alice, case=owned, kind=kind("refund"), amount="1200", currency="EUR",
                           justification="key account")
    pending = GrantFactory(subject_role=role(Role.AGENT), status=GrantStatus.PENDING, granted_by=cast["mike"])
    Delegation.objects.create(manager=maria, delegate=cast["mike"], starts_at=timezone.now(),
                              ends_at=timezone.now() + timedelta(days=3), created_at=timezone.now())
    audit_checkpoint_create()
    grant = Grant.objects.get(subject_user=alice)
    values = {"pk": owned.pk, "seq": 1, "dataset": "decisions", "fmt": "csv",
              "authority:grant_new:query": f"?subject=user-{alice.pk}&kind=refund"}
    for name in ("authority:grant_edit", "authority:grant_end", "audit:grant"):
        values[f"{name}:pk"] = grant.pk
    values["audit:decision:pk"] = decision.pk
    values["authority:grant_replay:pk"] = pending.pk
    values["cases:reverse:pk"], values["cases:reverse:decision_id"] = decision.case_id, decision.pk
    # an AI agent (its console pages and forms), and a case it handed to alice (her pick-up form)
    robot = ai_agent(retention, "ai-walk")
    for name in ("ai_agent", "ai_agent_suspend", "ai_agent_reinstate", "ai_agent_token", "ai_agent_hand_off_cases"):
        values[f"authority:{name}:pk"] = robot.pk
    hand_off = case_hand_off(actor=robot.user, case=CaseFactory(owner=robot.user, team=retention),
                             to_user=alice, reason="asked", reason_text="The customer asked for a person.")
    values["cases:hand-off-pick-up:pk"], values["cases:hand-off-pick-up:hand_off_id"] = hand_off.case_id, hand_off.pk
    return {"owned": owned, "queued": queued, "resolved": resolved, "values": values, "alice": alice}


def pages_to_open(desk) -> list[str]:
    """Every GET page of the agent workspace and the consoles, with real ids; and each kind of case page."""
    urls = [fill(name, route, desk["values"]) for name, route, _ in patterns()
            if name and name.split(":")[0] in WEB_UI and name != "cases:rate"]
    return urls + [reverse("cases:detail", args=[desk[case].pk]) for case in ("queued", "resolved")]


def pages_a_post_renders(client, persona: str, desk) -> list[tuple[str, str]]:
    """The pages only a POST renders: the review steps, a decision refused over the limit, a grant preview."""
    case = desk["owned"]
    rendered = []
    if persona == "agent":
        for amount in ("100", "1200"):  # within her authority, then over it: the request form
            rendered.append((f"review {amount}", client.post(reverse("cases:review", args=[case.pk]), {
                "kind": "refund", "amount": amount, "currency": "EUR", "rationale": "Charged twice"}).text))
        rendered.append(("refused decision", client.post(reverse("cases:decide", args=[case.pk]), {
            "kind": "refund", "amount": "1400", "currency": "EUR", "rationale": "Charged twice"}).text))
    if persona in ("manager", "superuser"):
        rendered.append(("grant preview", client.post(reverse("authority:grant_new"), {
            "subject": f"user-{desk['alice'].pk}", "kind": "refund", "purpose": "", "step": "preview",
            "effect": "permit", "per_case_limit": "300", "period_limit": "900", "period": "month",
            "currency": "EUR", "reason": "Raise for the season"}).text))
    return rendered


def unprotected_forms(html: str) -> tuple[list[str], list[str]]:
    """Return (the POST forms without a token that do not say they change nothing, the actions checked)."""
    missing, checked = [], []
    for attributes, body in FORM.findall(html):
        if not POST.search(attributes):
            continue
        action = (ACTION.search(attributes) or [None, ""])[1]
        if action.startswith(OUT_OF_SCOPE):
            continue
        checked.append(action)
        if 'name="once_token"' not in body and "data-changes-nothing" not in attributes:
            missing.append(f"<form{attributes}>")
    return missing, checked


def test_every_state_changing_form_of_every_persona_carries_a_one_time_token(client, cast, desk):
    personas = {"agent": cast["alice"], "manager": cast["maria"], "auditor": cast["audrey"],
                "superuser": cast["admin"]}
    missing, seen = [], set()
    for persona, user in personas.items():
        client.force_login(user)
        # when each persona opens every page, and the pages a POST renders
        rendered = []
        for url in pages_to_open(desk):
            response = client.get(url)
            if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
                rendered.append((url, response.text))
        rendered += pages_a_post_renders(client, persona, desk)
        for where, html in rendered:
            without, checked = unprotected_forms(html)
            missing += [f"{persona} on {where}: {form}" for form in without]
            seen.update(re.sub(r"\d+", "<id>", action) for action in checked)
    # then every state-changing form among them carries the token
    assert not missing, "add {% once_token %} to these forms:\n" + "\n".join(missing)
    # and the walk really reached the forms of the workspace and the consoles
    expected = {"/cases/<id>/claim/", "/cases/<id>/review/", "/cases/<id>/decide/", "/cases/<id>/request/",
                "/cases/<id>/resolve/", "/cases/<id>/handover/", "/cases/<id>/reopen/",
                "/authority/approvals/<id>/approve/", "/authority/approvals/<id>/reject/",
                "/authority/pending/<id>/confirm/", "/authority/pending/<id>/reject/",
                "/authority/delegations/<id>/revoke/", "/audit/decisions/<id>/flag/", ""}
    assert expected <= seen, expected - seen
