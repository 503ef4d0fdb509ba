"""Every URL of the product, for every persona: the expected status, walked from the URL resolver.

A new URL fails this test until its expected statuses are written down below: nobody exposes a
page by accident. Object ids are real (a case, a grant, a pending grant, an open request, a
decision, a delegation, a checkpoint...), so pages are reached, not 404s.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from authority.models import AuthorityRequest, Delegation, Grant, GrantStatus, ReviewFlag
from authority.services import authority_request_open, decision_execute
from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key
from h2h_core.hand_offs import case_hand_off
from h2h_core.models import AuditEvent, CaseStatus, ChainVerification, Role
from tests.factories import CaseFactory, GrantFactory, ai_agent, kind, role, successful_audit_events

from .factories import ReviewFlagFactory
from .walk import PERSONAS, fill, patterns

pytestmark = pytest.mark.django_db

LOGIN = "login"  # 302 to the login page
ADMIN_LOGIN = "admin-login"  # 302 to the admin's login page


def page(*, agent=200, manager=200, auditor=200, superuser=200, anonymous=LOGIN):
    return {"anonymous": anonymous, "agent": agent, "manager": manager, "auditor": auditor, "superuser": superuser}


def same(status):
    return dict.fromkeys(PERSONAS, status)


SIGNED_IN = page()
SIGNED_IN_POST = page(agent=405, manager=405, auditor=405, superuser=405)  # GET on a form's target
MANAGER_PAGE = page(agent=403, auditor=403)
MANAGER_POST = page(agent=403, manager=405, auditor=403, superuser=405)
AUDITOR_PAGE = page(agent=403, manager=403)
AUDITOR_POST = page(agent=403, manager=403, auditor=405, superuser=405)
API = {"anonymous": 401, "agent": 200, "manager": 200, "auditor": 200, "superuser": 200}
API_POST = {"anonymous": 401, "agent": 405, "manager": 405, "auditor": 405, "superuser": 405}
API_AUDITOR = {"anonymous": 401, "agent": 403, "manager": 403, "auditor": 200, "superuser": 200}

EXPECTED = {
    # the shell
    "home": same(302),
    "login": same(200),
    "logout": same(405),  # POST only
    "healthz": same(200),  # the load balancer's probe: no login
    "metrics": same(404),  # off unless H2H_METRICS_ENABLED (tests/test_metrics.py)
    # the agent's workspace
    "cases:list": SIGNED_IN,
    "cases:new": page(auditor=403),
    "cases:customers": page(auditor=403),  # the intake picker's suggestions (JSON)
    "cases:waiting": SIGNED_IN,  # what waits for me: empty for those with nothing waiting
    "cases:detail": SIGNED_IN,
    "cases:claim": SIGNED_IN_POST,
    "cases:handover": SIGNED_IN_POST,
    "cases:review": page(agent=302, manager=302, auditor=302, superuser=302),  # GET: back to the decision form
    "cases:decide": SIGNED_IN_POST,
    "cases:request": SIGNED_IN_POST,
    "cases:resolve": SIGNED_IN_POST,
    "cases:reopen": SIGNED_IN_POST,
    "cases:check": page(agent=400, manager=400, auditor=400, superuser=400),  # asked without a kind
    "cases:reverse": SIGNED_IN_POST,  # a decision's reversal (managers of the case's team)
    "cases:presence": SIGNED_IN_POST,  # the case page's heartbeat
    "cases:hand-off-pick-up": SIGNED_IN_POST,  # the receiver of an AI agent's hand-off picks it up
    "cases:rate": same(200),  # the customer's signed link: no login
    "customers:detail": SIGNED_IN,  # 404 to whoever sees none of the customer's cases
    "customers:note_add": SIGNED_IN_POST,
    "authority:mine": SIGNED_IN,
    # the manager console
    "authority:approvals": MANAGER_PAGE,
    "authority:approve": MANAGER_POST,
    "authority:reject": MANAGER_POST,
    "authority:pending": MANAGER_PAGE,
    "authority:confirm": MANAGER_POST,
    "authority:reject_grant": MANAGER_POST,
    "authority:grant_replay": MANAGER_PAGE,  # the replay of a pending change: its checkers and its maker
    "authority:matrix": MANAGER_PAGE,
    "authority:grant_new": MANAGER_PAGE,
    "authority:grant_edit": MANAGER_PAGE,
    "authority:grant_end": MANAGER_PAGE,
    "authority:people": MANAGER_PAGE,
    "authority:delegations": MANAGER_PAGE,
    "authority:delegation_revoke": MANAGER_POST,
    "authority:what_if": MANAGER_PAGE,
    "authority:dashboard": MANAGER_PAGE,
    "authority:hand_offs": MANAGER_PAGE,
    "authority:ai_agents": MANAGER_PAGE,
    "authority:ai_agent_new": MANAGER_PAGE,
    "authority:ai_agent": MANAGER_PAGE,
    "authority:ai_agent_suspend": MANAGER_POST,
    "authority:ai_agent_reinstate": MANAGER_POST,
    "authority:ai_agent_token": MANAGER_POST,
    "authority:ai_agent_hand_off_cases": MANAGER_POST,
    "authority:ai_vs_human": MANAGER_PAGE,
    "authority:shadow": MANAGER_PAGE,
    "authority:ai_vs_human_csv": MANAGER_PAGE,
    "authority:recommendations": MANAGER_PAGE,
    "authority:recommendation_accept": MANAGER_POST,
    "authority:outcomes": MANAGER_PAGE,
    "authority:outcomes_csv": MANAGER_PAGE,
    # the auditor console
    "audit:log": AUDITOR_PAGE,
    "audit:decisions": AUDITOR_PAGE,
    "audit:decision": AUDITOR_PAGE,
    "audit:decision_receipt": AUDITOR_PAGE,  # the receipt's JSON download
    "audit:flag": AUDITOR_POST,
    "audit:grant": AUDITOR_PAGE,
    "audit:authority_at": AUDITOR_PAGE,
    "audit:changes": AUDITOR_PAGE,
    "audit:chain": AUDITOR_PAGE,
    "audit:verify": AUDITOR_PAGE,
    "audit:verify_request": AUDITOR_POST,
    "audit:checkpoints": AUDITOR_PAGE,
    "audit:public_key": AUDITOR_PAGE,
    "audit:export": AUDITOR_PAGE,
    "audit:exports": AUDITOR_PAGE,
    "audit:export_download": page(agent=403, manager=403, superuser=404),  # the requester's own file only
    "audit:review": AUDITOR_PAGE,
    "audit:flags": AUDITOR_PAGE,
    "audit:ai_vs_human": AUDITOR_PAGE,
    "audit:ai_vs_human_csv": AUDITOR_PAGE,
    "audit:findings": AUDITOR_PAGE,
    "audit:findings_flag": AUDITOR_POST,
    "audit:findings_csv": AUDITOR_PAGE,
    "audit:outcomes": AUDITOR_PAGE,
    "audit:outcomes_csv": AUDITOR_PAGE,
    # the REST API (lists are filtered per user; writes are POST)
    "api:token": API_POST,  # POST to get one (no login), DELETE to revoke the one in use
    "api:auth-token-list": API,  # one's own tokens
    "api:auth-token-detail": API_POST,  # DELETE only
    "api:me": API,
    "api:authority-kinds": API,
    "api:authority-check": API_POST,
    "api:audit-verify": API_AUDITOR,
    "api:findings": API_AUDITOR,
    "api:audit-verification-detail": {**API_AUDITOR, "agent": 404, "manager": 404},  # a run is 404 to others
    "api:case-list": API,
    "api:case-detail": API,
    "api:case-claim": API_POST,
    "api:case-handover": API_POST,
    "api:case-resolve": API_POST,
    "api:decision-list": API,
    "api:hand-off-list": API,
    "api:hand-off-detail": API,
    "api:hand-off-pick-up": API_POST,
    "api:decision-detail": API,
    "api:decision-reverse": API_POST,
    "api:decision-receipt": API,
    "api:audit-checkpoint-consistency": {**API_AUDITOR, "auditor": 400, "superuser": 400},  # asked without ?old=&new=
    # the AI agent's tools: only an AI agent's token opens them
    "api:ai-me": {**API, "agent": 403, "manager": 403, "auditor": 403, "superuser": 403},
    "api:ai-take": {**API_POST, "agent": 403, "manager": 403, "auditor": 403, "superuser": 403},
    "api:ai-check": {**API_POST, "agent": 403, "manager": 403, "auditor": 403, "superuser": 403},
    "api:ai-decide": {**API_POST, "agent": 403, "manager": 403, "auditor": 403, "superuser": 403},
    "api:ai-hand-off": {**API_POST, "agent": 403, "manager": 403, "auditor": 403, "superuser": 403},
    "api:authority-request-list": API,
    "api:authority-request-detail": API,
    "api:authority-request-approve": API_POST,
    "api:authority-request-reject": API_POST,
    "api:grant-list": API,
    "api:grant-detail": API,
    "api:grant-change": API_POST,
    "api:grant-confirm": API_POST,
    "api:grant-end": API_POST,
    "api:grant-reject": API_POST,
    "api:grant-replay": {**API, "agent": 403, "auditor": 403},  # managers who may check the pending change
    "api:audit-event-list": API_AUDITOR,
    "api:audit-event-detail": API_AUDITOR,
    "api:schema": same(200),
    "api:docs": same(200),
    "<catch-all> api/": same(404),
    # the admin's own pages (its model pages follow the rule in admin_expected)
    "admin:index": {**same(ADMIN_LOGIN), "superuser": 200},
    "admin:login": {**same(200), "superuser": 302},
    "admin:logout": {**same(302), "superuser": 405},
    "admin:password_change": {**same(ADMIN_LOGIN), "superuser": 200},
    "admin:password_change_done": {**same(ADMIN_LOGIN), "superuser": 200},
    "admin:autocomplete": {**same(ADMIN_LOGIN), "superuser": 403},  # asked without a field
    "admin:jsi18n": {**same(ADMIN_LOGIN), "superuser": 200},
    "admin:view_on_site": {**same(ADMIN_LOGIN), "superuser": 404},  # no model has a public page
    "admin:app_list": {**same(ADMIN_LOGIN), "superuser": 200},
    "<catch-all> admin/": {**same(ADMIN_LOGIN), "superuser": 404},
}


def admin_expected(key: str, route: str, superuser) -> dict | None:
    """The admin's model pages: only staff get in; audited models are read-only even for a superuser."""
    from django.contrib import admin
    from django.test import RequestFactory

    from .walk import _admin_model

    model = _admin_model(route)
    if model is None:
        return None
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/")
    request.user = superuser
    has_rows = model._default_manager.exists()
    suffix = key.rsplit("_", 1)[-1] if key.startswith("admin:") else "redirect"
    status = {
        "changelist": 200,
        "add": 200 if model_admin.has_add_permission(request) else 403,
        "history": 200 if has_rows else 302,
        "change": 200 if has_rows else 302,
        "delete": (200 if has_rows else 302) if model_admin.has_delete_permission(request) else 403,
        "redirect": 302,  # <object_id>/ sends to the change page
        "password": 200,
    }.get(suffix)
    return {**same(ADMIN_LOGIN), "superuser": status}


def _ready_export(requester, settings, tmp_path):
    """A built export file of `requester`'s, in a storage of the test's own."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from edges.models import ExportFile

    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "files")}}}
    now = timezone.now()
    return ExportFile.objects.create(requested_by=requester, dataset="decisions", format="csv", status="ready",
                                     file=default_storage.save("exports/walk.csv", ContentFile(b"id\n")),
                                     created_at=now, expires_at=now + timedelta(days=1))


@pytest.fixture
def world(cast, settings, tmp_path):
    """Real objects for every URL parameter."""
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "audit.pem"
    generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)
    alice, maria = cast["alice"], cast["maria"]
    case = CaseFactory(owner=alice, team=cast["retention"], status=CaseStatus.OWNED)
    decision = decision_execute(actor=alice, case=CaseFactory(owner=alice, team=cast["retention"]),
                                kind=kind("refund"), amount="100", currency="EUR", rationale="late delivery")
    request = authority_request_open(actor=alice, case=case, kind=kind("refund"), amount="1200", currency="EUR",
                                     justification="key account")
    pending = GrantFactory(subject_role=role(Role.AGENT), status=GrantStatus.PENDING, granted_by=cast["mike"],
                           per_case_limit=Decimal("3000"))
    grant = Grant.objects.get(subject_user=alice)
    delegation = Delegation.objects.create(manager=maria, delegate=cast["mike"], starts_at=timezone.now(),
                                           ends_at=timezone.now() + timedelta(days=3), created_at=timezone.now())
    ReviewFlagFactory(decision=decision, auditor=cast["audrey"])
    audit_checkpoint_create()
    from workflows.services import rating_token

    resolved = CaseFactory(owner=alice, team=cast["retention"], status=CaseStatus.RESOLVED,
                           resolved_at=timezone.now())
    values = {
        "pk": case.pk, "seq": AuditEvent.objects.order_by("seq").first().seq, "dataset": "decisions", "fmt": "csv",
        "token": rating_token(resolved),
        "view_on_site_model": Group, "view_on_site_object": role(Role.AGENT),
    }
    for name in ("authority:approve", "authority:reject", "api:authority-request-detail",
                 "api:authority-request-approve", "api:authority-request-reject"):
        values[f"{name}:pk"] = request.pk
    for name in ("authority:confirm", "authority:reject_grant", "api:grant-confirm", "api:grant-reject",
                 "authority:grant_replay", "api:grant-replay"):
        values[f"{name}:pk"] = pending.pk
    for name in ("authority:grant_edit", "authority:grant_end", "audit:grant", "api:grant-detail", "api:grant-change",
                 "api:grant-end"):
        values[f"{name}:pk"] = grant.pk
    for name in ("audit:decision", "audit:flag", "audit:decision_receipt", "api:decision-detail",
                 "api:decision-reverse", "api:decision-receipt"):
        values[f"{name}:pk"] = decision.pk
    values["cases:reverse:pk"], values["cases:reverse:decision_id"] = decision.case_id, decision.pk
    values["authority:delegation_revoke:pk"] = delegation.pk
    robot = ai_agent(cast["retention"], "ai-walk")
    for name in ("ai_agent", "ai_agent_suspend", "ai_agent_reinstate", "ai_agent_token", "ai_agent_hand_off_cases"):
        values[f"authority:{name}:pk"] = robot.pk
    hand_off = case_hand_off(actor=robot.user, case=CaseFactory(owner=robot.user, team=cast["retention"]),
                             to_user=alice, reason="asked", reason_text="The customer asked for a person.")
    values["cases:hand-off-pick-up:pk"], values["cases:hand-off-pick-up:hand_off_id"] = hand_off.case_id, hand_off.pk
    values["api:hand-off-detail:pk"] = values["api:hand-off-pick-up:pk"] = hand_off.pk
    values["customers:detail:pk"] = values["customers:note_add:pk"] = case.customer_id
    values["api:audit-verification-detail:pk"] = ChainVerification.objects.create(requested_at=timezone.now()).pk
    values["audit:export_download:pk"] = _ready_export(cast["audrey"], settings, tmp_path).pk
    values["authority:grant_new:query"] = f"?subject=user-{alice.pk}&kind=refund"
    return values


def personas(cast):
    return {"anonymous": None, "agent": cast["alice"], "manager": cast["maria"], "auditor": cast["audrey"],
            "superuser": cast["admin"]}


def outcome(response) -> int | str:
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith(reverse("admin:login")):
            return ADMIN_LOGIN
        if location.startswith(reverse("login")):
            return LOGIN
    return response.status_code


def walk(client, cast, values):
    found = {}
    for name, route, _pattern in patterns():
        path = fill(name, route, values)
        key = name if name else f"<unnamed> {route}"
        found[key] = {"route": route}
        for persona, user in personas(cast).items():
            client.logout()
            if user is not None:
                client.force_login(user)
            response = client.get(path)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
            found[key][persona] = outcome(response)
    return found


def test_every_url_answers_every_persona_as_expected(client, cast, world):
    # given real objects behind every URL parameter, when each persona requests every URL of the product
    found = walk(client, cast, world)
    # then each answers exactly as written down, and no URL is left undeclared
    undeclared, wrong = [], []
    for key, statuses in found.items():
        route = statuses.pop("route")
        expected = EXPECTED.get(key) or admin_expected(key, route, cast["admin"])
        if expected is None:
            undeclared.append(f"{key}: {statuses}")
        elif statuses != expected:
            wrong.append(f"{key}: expected {expected}, got {statuses}")
    assert not undeclared, "declare the expected statuses of these new URLs in EXPECTED:\n" + "\n".join(undeclared)
    assert not wrong, "\n".join(wrong)
    assert len(found) > 100  # the walk really covered the product, admin included


def everything():
    """What a refused write must leave untouched."""
    return (successful_audit_events(), list(Grant.objects.order_by("pk").values_list("pk", "status",
                                                                                      "superseded_at")),
            list(AuthorityRequest.objects.values_list("pk", "status")),
            list(Delegation.objects.values_list("pk", "revoked_at")), ReviewFlag.objects.count(),
            ChainVerification.objects.count())


def test_outsiders_posting_to_the_consoles_are_refused_and_change_nothing(client, cast, world):
    # given every console URL and the personas who may not use it
    targets = [(name, route) for name, route, _ in patterns()
               if name and name.split(":")[0] in ("authority", "audit") and name != "authority:mine"]
    before = everything()
    refused = 0
    for name, route in targets:
        path = fill(name, route, world)
        for persona, user in personas(cast).items():
            if EXPECTED[name][persona] not in (403, LOGIN):
                continue
            client.logout()
            if user is not None:
                client.force_login(user)
            # when they post a plausible form to it
            response = client.post(path, {"note": "x", "reason": "x", "severity": "major", "finding": "x",
                                          "delegate": "mike", "step": "save", "effect": "permit",
                                          "per_case_limit": "1", "period": "none", "currency": "EUR"})
            # then they are refused (or sent to log in), and nothing changed
            assert outcome(response) == EXPECTED[name][persona], (name, persona)
            refused += 1
    assert everything() == before
    assert refused > 60
