#!/usr/bin/env python3
"""Play an AI agent against a running H2H: take the team's queued cases, propose, check, decide.

A client, not a model: no model is downloaded or called. `propose` stands in for one with a few
plain rules on the case (its category and the amount at stake); everything else is what a real
agent's tool loop does with the API under /api/v1/ai/:

    take      -> owned, or handed_off (outside the AI agent's routing rules)
    check     -> would execute, shadow or hand_off (changes nothing)
    decide    -> executed (201), shadow (202) or handed_off (202): a person owns the case from there
    hand-off  -> when check says the decision is not the AI agent's to make

Usage, against `make run` (see README.md, "AI agents", for registering the agent and its token):

    H2H_TOKEN=<the AI agent's token> python3 examples/ai_agent_client.py
    python3 examples/ai_agent_client.py --token <token> --base-url http://127.0.0.1:8000 --limit 5 --dry-run

Standard library only. Every writing call carries an Idempotency-Key derived from the agent, the
case and the action, so running the script again after a crash or a timeout replays the answers
already given instead of acting twice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
OUTCOMES = ("executed", "shadow", "handed_off", "owned", "already_decided", "would_execute", "would_shadow",
            "would_hand_off", "would_take", "error")


class ApiError(Exception):
    """An answer in the API's error shape (or a transport failure, with status 0)."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class Api:
    """A tiny JSON client for /api/v1/ with token authentication."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0):
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"The base URL must start with http:// or https://, not {base_url!r}.")
        self.base = base_url.rstrip("/")
        if not self.base.endswith("/api/v1"):
            self.base += "/api/v1"
        self.token, self.timeout = token, timeout

    def call(self, method: str, path: str, body: dict | None = None, *, key: str | None = None,
             query: dict | None = None) -> tuple[int, dict]:
        """Send one request; return (status, JSON body) on success, raise ApiError otherwise."""
        url = f"{self.base}/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        # The scheme is http(s), checked in __init__: no file: or custom schemes.
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise _api_error(error) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(0, "unreachable", f"Cannot reach {self.base}: {reason}") from None

    def get(self, path: str, **query) -> dict:
        return self.call("GET", path, query=query or None)[1]

    def post(self, path: str, body: dict, *, key: str | None = None) -> tuple[int, dict]:
        return self.call("POST", path, body, key=key)


def _api_error(error: urllib.error.HTTPError) -> ApiError:
    raw = error.read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and {"code", "message"} <= set(body):
        return ApiError(error.code, body["code"], body["message"], body.get("details"))
    return ApiError(error.code, "http_error", raw[:200].decode(errors="replace") or str(error.reason))


# --- The stand-in for a model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    kind: str
    amount: str
    currency: str
    rationale: str
    confidence: str


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def propose(case: dict) -> Proposal:
    """Propose an action from plain rules on the case. A STAND-IN FOR A MODEL: no model is called.

    - a billing error: refund the amount at stake (the customer was charged what they did not owe);
    - anything else: a goodwill credit of 10% of the amount at stake (at least 5.00).
    The stated confidence drops as the stakes rise: 0.900 up to stakes 50, 0.650 above.
    """
    at_stake = Decimal(case["amount_at_stake"])
    currency = case["currency"]
    confidence = "0.900" if case["stakes_score"] <= 50 else "0.650"
    if case["category"] == "billing_error":
        return Proposal("refund", _money(at_stake), currency,
                        f"Stand-in rule: billing error, refund the {_money(at_stake)} {currency} charged.", confidence)
    credit = max(at_stake * Decimal("0.10"), Decimal(5))
    return Proposal("goodwill_credit", _money(credit), currency,
                    f"Stand-in rule: goodwill credit of 10% of the {_money(at_stake)} {currency} at stake.",
                    confidence)


# --- The agent's loop --------------------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    category: str
    stakes: int
    proposal: str = ""
    outcome: str = ""
    owner: str = ""
    detail: str = ""


@dataclass
class Report:
    agent: str
    rows: list[Row] = field(default_factory=list)

    @property
    def totals(self) -> Counter:
        return Counter(row.outcome for row in self.rows)


def cases_to_work(api: Api, *, me: dict, limit: int) -> list[dict]:
    """The AI agent's own open cases first (a previous run took them), then its team's queue, oldest first."""
    found: list[dict] = []
    for query in ({"owner": me["username"], "status": "owned"}, {"team": me["team"]["slug"], "status": "queued"}):
        page = api.get("cases/", **query, page_size=min(max(limit, 1), 200))
        while True:
            found.extend(page["results"])
            if len(found) >= limit or not page.get("next"):
                break
            page = api.get("cases/", **query, page_size=min(max(limit, 1), 200),
                           page=_page_of(page["next"]))
        if len(found) >= limit:
            break
    return found[:limit]


def _page_of(next_url: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlparse(next_url).query)["page"][0]


def idempotency_key_for(me: dict, case: dict, action: str, proposal: Proposal | None = None) -> str:
    what = f":{proposal.kind}:{proposal.amount}{proposal.currency}" if proposal else ""
    return f"example-client:{me['username']}:{case['id']}:{action}{what}"


def summary_for(case: dict, proposal: Proposal) -> str:
    return (f"{case['subject']} ({case['category']}, stakes {case['stakes_score']}, "
            f"{case['amount_at_stake']} {case['currency']} at stake). Proposed {proposal.kind} of "
            f"{proposal.amount} {proposal.currency}.")


def work_case(api: Api, *, me: dict, case: dict, dry_run: bool = False) -> Row:
    """Take, check and decide (or hand off) one case; return what happened."""
    row = Row(case=case["reference"], category=case["category"], stakes=case["stakes_score"])
    proposal = propose(case)
    row.proposal = f"{proposal.kind} {proposal.amount} {proposal.currency} @{proposal.confidence}"
    transcript = [{"from": "customer", "text": case["subject"]}]
    try:
        owned = case["owner"] == me["username"]
        if owned and (earlier := api.get("decisions/", case=case["id"], agent="me")["results"]):
            # A previous run decided here already: an agent does not propose twice on one case.
            row.outcome, row.owner = "already_decided", me["username"]
            row.detail = ", ".join(f"decision {d['id']}: {d['kind']} {d['amount']} {d['currency']}" for d in earlier)
            return row
        if not owned:
            if dry_run:
                row.outcome, row.owner, row.detail = "would_take", case["owner"] or "", "queued; dry run takes nothing"
                return row
            _, taken = api.post("ai/take/", {"case": case["id"], "summary": case["subject"],
                                             "transcript": transcript}, key=idempotency_key_for(me, case, "take"))
            if taken["outcome"] != "owned":
                return _outcome(row, taken)
        _, check = api.post("ai/check/", {"case": case["id"], "kind": proposal.kind, "amount": proposal.amount,
                                          "currency": proposal.currency, "confidence": proposal.confidence})
        if dry_run:
            row.outcome, row.owner = f"would_{check['would']}", me["username"]
            row.detail = "; ".join(check["reasons"])[:120]
            return row
        if check["would"] == "hand_off":
            reason = "; ".join(check["reasons"]) or "Not mine to decide."
            _, handed = api.post("ai/hand-off/", {"case": case["id"], "reason": reason,
                                                  "summary": summary_for(case, proposal), "transcript": transcript},
                                 key=idempotency_key_for(me, case, "hand-off", proposal))
            return _outcome(row, handed)
        _, decided = api.post("ai/decide/", {
            "case": case["id"], "kind": proposal.kind, "amount": proposal.amount, "currency": proposal.currency,
            "rationale": proposal.rationale, "confidence": proposal.confidence,
            "summary": summary_for(case, proposal), "transcript": transcript,
        }, key=idempotency_key_for(me, case, "decide", proposal))
        return _outcome(row, decided)
    except ApiError as error:
        if error.status in (0, 401):
            raise  # nothing else will work either
        row.outcome, row.detail = "error", f"{error.status} {error.code}: {error.message}"[:120]
        return row


def _outcome(row: Row, answer: dict) -> Row:
    row.outcome, row.owner = answer["outcome"], answer["case"]["owner"] or "(team queue)"
    row.detail = "; ".join(answer["reasons"])[:120]
    return row


def run(api: Api, *, limit: int = 20, dry_run: bool = False) -> Report:
    """Work up to `limit` cases as the AI agent whose token `api` carries."""
    me = api.get("ai/me/")
    report = Report(agent=f"{me['username']} ({me['model_name']} {me['model_version']}, team {me['team']['slug']})")
    for case in cases_to_work(api, me=me, limit=limit):
        report.rows.append(work_case(api, me=me, case=case, dry_run=dry_run))
    return report


def render(report: Report, *, dry_run: bool = False) -> str:
    """The table of outcomes and the totals, as text."""
    columns = ("case", "category", "stakes", "proposal", "outcome", "owner", "detail")
    cells = [[str(getattr(row, name)) for name in columns] for row in report.rows]
    widths = [max([len(name), *(len(line[i]) for line in cells)]) for i, name in enumerate(columns)]
    lines = [f"AI agent {report.agent}" + (" - dry run: nothing taken or decided" if dry_run else ""), ""]
    lines.append("  ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
              for line in cells]
    if not report.rows:
        lines.append("(no open cases of mine and nothing queued for my team)")
    totals = report.totals
    lines += ["", "totals: " + ", ".join(f"{name} {totals[name]}" for name in OUTCOMES if totals[name] or name in (
        "executed", "shadow", "handed_off"))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("H2H_URL", DEFAULT_BASE_URL),
                        help=f"where H2H runs (default: $H2H_URL or {DEFAULT_BASE_URL})")
    parser.add_argument("--token", default=os.environ.get("H2H_TOKEN"),
                        help="the AI agent's API token (default: $H2H_TOKEN)")
    parser.add_argument("--limit", type=int, default=20, help="work at most this many cases (default 20)")
    parser.add_argument("--dry-run", action="store_true", help="check only: take and decide nothing")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("give the AI agent's token with --token or H2H_TOKEN")
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        api = Api(args.base_url, args.token)
    except ValueError as error:
        parser.error(str(error))
    try:
        report = run(api, limit=args.limit, dry_run=args.dry_run)
    except ApiError as error:
        hint = {0: "Is H2H running (make run)?", 401: "Check the token: issue a new one for the AI agent.",
                403: "Is this token an AI agent's, and is the agent not suspended?"}.get(error.status, "")
        status = f"{error.status} " if error.status else ""
        print(f"error: {status}{error.code}: {error.message}" + (f"\n  {hint}" if hint else ""), file=sys.stderr)
        return 2
    print(render(report, dry_run=args.dry_run))
    return 1 if report.totals["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
