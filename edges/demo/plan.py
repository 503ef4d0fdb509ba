"""The demo plan: customers and cases drawn from a fixed seed, with a time for every step.

Pure: the plan depends on the seed, the scale and the current time only, never on the database.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from edges.demo.cast import APPROX_RATE, BASE_CASES, BASE_CUSTOMERS, HISTORY_DAYS, SEED, TEAM_AGENTS, _in_currency
from h2h_core.models import CaseCategory, CaseEvent, CaseStatus, CustomerTier
from h2h_core.sla import team_slug_for

# --- customers -------------------------------------------------------------------------------

NAME_WORDS = (
    "Alder", "Amber", "Arcadia", "Aurora", "Baltic", "Beacon", "Birch", "Blue Harbor", "Brightwater", "Cedar",
    "Cobalt", "Copper", "Crescent", "Delta", "Eastgate", "Ember", "Evergreen", "Falcon", "Fjord", "Granite",
    "Greenfield", "Helios", "Highland", "Horizon", "Ironwood", "Juniper", "Kestrel", "Lakeside", "Linden",
    "Lumen", "Maple", "Meridian", "Nordlicht", "North Star", "Oakridge", "Orion", "Pacific", "Pinecrest",
    "Polaris", "Quarry", "Rhine", "Riverside", "Sable", "Silverline", "Solstice", "Summit", "Tidewater",
    "Trident", "Union", "Vale", "Vertex", "Westwind", "Willow", "Zenith",
)
TRADES = (
    "Analytics", "Bakeries", "Biotech", "Builders", "Clinics", "Consulting", "Dental", "Energy", "Engineering",
    "Fitness", "Foods", "Freight", "Furniture", "Health", "Hotels", "Insurance", "Labs", "Legal", "Logistics",
    "Media", "Motors", "Optics", "Outfitters", "Pharma", "Printing", "Robotics", "Software", "Solar", "Studios",
    "Textiles", "Travel",
)
LEGAL_FORMS = {"EUR": ("GmbH", "AG", "B.V.", "SAS", "S.r.l.", "Oy"), "GBP": ("Ltd", "plc"), "USD": ("Inc.", "LLC"),
               "CHF": ("AG", "SA"), "SEK": ("AB",), "JPY": ("K.K.",)}
CURRENCY_WEIGHTS = (("EUR", 70), ("USD", 10), ("GBP", 8), ("CHF", 6), ("SEK", 4), ("JPY", 2))
TIER_WEIGHTS = ((CustomerTier.STANDARD, 45), (CustomerTier.SILVER, 30), (CustomerTier.GOLD, 18),
                (CustomerTier.PLATINUM, 7))
TIER_VALUE_EUR = {CustomerTier.STANDARD: (3_000, 25_000), CustomerTier.SILVER: (25_000, 90_000),
                  CustomerTier.GOLD: (90_000, 350_000), CustomerTier.PLATINUM: (350_000, 2_500_000)}
TIER_CASE_WEIGHT = {CustomerTier.STANDARD: 1.0, CustomerTier.SILVER: 1.3, CustomerTier.GOLD: 1.8,
                    CustomerTier.PLATINUM: 2.5}


@dataclass(frozen=True)
class CustomerPlan:
    name: str
    email: str
    tier: str
    annual_value: Decimal
    currency: str
    customer_since: date


# --- cases -----------------------------------------------------------------------------------

CATEGORY_WEIGHTS = (
    (CaseCategory.COMPLAINT, 20), (CaseCategory.BILLING_ERROR, 25), (CaseCategory.RENEWAL, 16),
    (CaseCategory.ONBOARDING, 13), (CaseCategory.HIGH_VALUE, 9), (CaseCategory.CRISIS, 7), (CaseCategory.OTHER, 10),
)
SUBJECTS = {
    CaseCategory.COMPLAINT: (
        "Charged twice for the monthly plan (invoice {inv})", "Outage credit promised but not applied ({inv})",
        "Support ticket ignored for two weeks ({tk})", "Delivery missed twice, order {ord}",
        "Price increase not announced, contract {ctr}", "Cancelled add-on still billed ({inv})",
    ),
    CaseCategory.ONBOARDING: (
        "Setup fee billed before go-live, contract {ctr}", "Data migration stalled for account {acc}",
        "Training session cancelled at short notice, order {ord}", "Single sign-on not working after setup ({tk})",
        "Go-live postponed by the implementation team, contract {ctr}",
    ),
    CaseCategory.RENEWAL: (
        "Renewal quote too high, contract {ctr}", "Auto-renewal of contract {ctr} disputed",
        "Wants to downgrade at renewal, contract {ctr}", "Competitor offer on the table, contract {ctr}",
        "Renewal paperwork stuck in procurement, contract {ctr}",
    ),
    CaseCategory.CRISIS: (
        "Platform down for all users ({inc})", "Payroll export failed before pay day ({inc})",
        "Order intake stopped after the update ({inc})", "Customer data visible to the wrong tenant ({inc})",
    ),
    CaseCategory.HIGH_VALUE: (
        "Expansion to four new sites, contract {ctr}", "Executive escalation on account {acc}",
        "Multi-year deal review, contract {ctr}", "Board asks for a service review, account {acc}",
    ),
    CaseCategory.BILLING_ERROR: (
        "Invoice {inv} charged twice", "Wrong VAT rate on invoice {inv}", "Late fee applied in error ({inv})",
        "Refund for cancelled order {ord} not received", "Invoice {inv} in the wrong currency",
        "Seats billed after they were removed ({inv})",
    ),
    CaseCategory.OTHER: (
        "Change of billing address for account {acc}", "Question about data retention ({tk})",
        "Copy of contract {ctr} requested", "New invoice contact for account {acc}",
    ),
}
DESCRIPTIONS = {
    CaseCategory.COMPLAINT: "The customer is unhappy and says so; they expect a fix and an apology.",
    CaseCategory.ONBOARDING: "New customer, first weeks: the start has not gone as promised.",
    CaseCategory.RENEWAL: "The contract is up for renewal and the customer is hesitating.",
    CaseCategory.CRISIS: "Business-critical: the customer cannot work until this is fixed.",
    CaseCategory.HIGH_VALUE: "A large account with a lot at stake; handle with care.",
    CaseCategory.BILLING_ERROR: "Something on the bill is wrong; the customer sent the invoice.",
    CaseCategory.OTHER: "A routine request from the customer.",
}
RESOLUTIONS = {
    CaseCategory.COMPLAINT: ("Apologised, corrected the charge and confirmed in writing.",
                             "Explained the cause; the customer accepted the credit."),
    CaseCategory.ONBOARDING: ("Go-live date agreed, setup fee settled, customer confirmed.",
                              "Migration finished; walked the customer through the first week."),
    CaseCategory.RENEWAL: ("Renewed for another year on adjusted terms.",
                           "Customer renewed after we matched the offer for the first quarter."),
    CaseCategory.CRISIS: ("Service restored; customer informed of cause and compensation.",
                          "Workaround in place and the fix deployed; post-mortem sent."),
    CaseCategory.HIGH_VALUE: ("Agreement reached with the customer's leadership.",
                              "Review held; action plan agreed and sent."),
    CaseCategory.BILLING_ERROR: ("Invoice corrected and the difference refunded.",
                                 "Duplicate charge reversed; customer has the credit note."),
    CaseCategory.OTHER: ("Done as requested and confirmed to the customer.",
                         "Answered the question in writing."),
}
NOTES = (
    "Called the customer; waiting for their bank statement.", "Customer prefers e-mail; sent a summary.",
    "Checked the billing history: the charge is ours.", "Asked engineering for the incident timeline.",
    "Customer available after 15:00 only.", "Promised an update by tomorrow noon.",
)
HANDOVER_NOTES = (
    "I am out from tomorrow. Customer knows you are taking over; all context is in the notes above.",
    "Handing over because you know this account; the customer asked for you by name.",
    "Needs someone on the early shift: the customer is in another time zone.",
)
REOPEN_REASONS = ("Customer wrote back: the credit has not arrived.",
                  "The same error came back on the next invoice.")
# (kind, low, high) per category; money in EUR before conversion, months and percent as they are.
DECISION_OPTIONS = {
    CaseCategory.COMPLAINT: (("goodwill_credit", 20, 150), ("refund", 30, 200)),
    CaseCategory.BILLING_ERROR: (("refund", 15, 400), ("fee_waiver", 10, 120)),
    CaseCategory.RENEWAL: (("discount", 5, 15), ("contract_extension", 1, 2)),
    CaseCategory.CRISIS: (("goodwill_credit", 50, 200), ("contract_extension", 1, 1)),
    CaseCategory.HIGH_VALUE: (("discount", 5, 20), ("goodwill_credit", 100, 250)),
    CaseCategory.ONBOARDING: (("fee_waiver", 25, 150), ("contract_extension", 1, 2)),
    CaseCategory.OTHER: (("goodwill_credit", 10, 40),),
}
RATIONALES = {
    "refund": "Refund of the amount charged in error.",
    "goodwill_credit": "Goodwill credit for the trouble caused.",
    "fee_waiver": "Fee waived: it should not have been charged.",
    "contract_extension": "Contract extended to make up for the lost time.",
    "discount": "Discount on the next term to keep the customer.",
}
# Customers are mostly content, a few are not.
RATINGS = (5, 5, 5, 5, 4, 4, 4, 4, 4, 3, 3, 2, 1)
# Generic decisions keep half of every period cap free, so the demo people still have headroom.
PERIOD_RESERVE = Decimal("0.5")


@dataclass
class Step:
    """One thing that happens to a case after it is opened, by `actor` (a username, or None)."""

    action: str
    actor: str | None = None
    kind: str = ""
    amount: Decimal | None = None
    currency: str = ""
    text: str = ""
    to: str = ""
    rating: int | None = None
    story: bool = False  # must succeed; generic decisions are skipped when outside authority
    at: datetime | None = None  # when it happens: set by `_schedule`
    # An AI agent's steps: its stated confidence, the conversation so far as (who, text) pairs, and
    # the outcome the story expects ("owned", "executed", "shadow", "handed_off").
    confidence: Decimal | None = None
    transcript: tuple[tuple[str, str], ...] = ()
    summary: str = ""
    expect: str = ""


@dataclass
class CasePlan:
    number: int
    customer: str
    subject: str
    category: str
    amount: Decimal
    currency: str
    opened_at: datetime
    description: str
    steps: list[Step] = field(default_factory=list)


# Which timeline event shows that a step happened (decisions are found by idempotency key and
# refusals by their audit event instead: a skipped decision leaves no trace).
STEP_EVENT = {
    "claim": CaseEvent.Kind.CLAIMED, "note": CaseEvent.Kind.NOTE, "handover": CaseEvent.Kind.HANDOVER,
    "request": CaseEvent.Kind.REQUEST, "approve": CaseEvent.Kind.REQUEST, "reject": CaseEvent.Kind.REQUEST,
    "resolve": CaseEvent.Kind.RESOLVED, "close": CaseEvent.Kind.CLOSED, "reopen": CaseEvent.Kind.REOPENED,
    "rate": CaseEvent.Kind.RATED, "ai_take": CaseEvent.Kind.CLAIMED,
}


@dataclass
class Plan:
    customers: list[CustomerPlan]
    cases: list[CasePlan]


# --- the plan (pure: depends on the seed, the scale and the current time only) ---------------


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]


def _plan_customers(rng: random.Random, count: int, today: date) -> list[CustomerPlan]:
    customers, brands = [], set()
    while len(customers) < count:
        currency = _weighted(rng, CURRENCY_WEIGHTS)
        brand = f"{rng.choice(NAME_WORDS)} {rng.choice(TRADES)}"
        name = f"{brand} {rng.choice(LEGAL_FORMS[currency])}"
        tier = _weighted(rng, TIER_WEIGHTS)
        low, high = TIER_VALUE_EUR[tier]
        value = _in_currency(Decimal(rng.randint(low, high)), currency, step=100)
        since = today - timedelta(days=rng.randint(120, 365 * 12))
        if brand in brands:
            continue
        brands.add(brand)
        domain = brand.lower().replace(" ", "-")
        customers.append(CustomerPlan(name=name, email=f"accounts@{domain}.example", tier=tier,
                                      annual_value=value, currency=currency, customer_since=since))
    return customers


def _amount_at_stake_eur(rng: random.Random, category: str, customer: CustomerPlan) -> Decimal:
    annual_eur = customer.annual_value / APPROX_RATE[customer.currency]
    if category == CaseCategory.RENEWAL:
        return Decimal(int(annual_eur * Decimal(rng.uniform(0.6, 1.0))))
    if category == CaseCategory.HIGH_VALUE:
        return Decimal(int(annual_eur * Decimal(rng.uniform(0.3, 1.2))))
    low, high = {CaseCategory.COMPLAINT: (40, 1500), CaseCategory.ONBOARDING: (150, 3000),
                 CaseCategory.CRISIS: (1000, 20000), CaseCategory.BILLING_ERROR: (15, 900),
                 CaseCategory.OTHER: (0, 150)}[category]
    return Decimal(rng.randint(low, high))


def _subject(rng: random.Random, category: str, number: int) -> str:
    template = rng.choice(SUBJECTS[category])
    return template.format(inv=f"INV-{240000 + number * 7}", ord=f"SO-{51000 + number * 3}",
                           ctr=f"C-{30000 + number * 11}", acc=f"A-{8000 + number * 5}",
                           tk=f"T-{90000 + number * 13}", inc=f"INC-{4000 + number}")


def _target(rng: random.Random, age: timedelta) -> str:
    r = rng.random()
    if age > timedelta(days=21):
        bands = ((0.80, CaseStatus.CLOSED), (0.92, CaseStatus.RESOLVED), (0.98, CaseStatus.OWNED))
    elif age > timedelta(days=7):
        bands = ((0.35, CaseStatus.CLOSED), (0.70, CaseStatus.RESOLVED), (0.92, CaseStatus.OWNED))
    else:
        bands = ((0.0, CaseStatus.CLOSED), (0.15, CaseStatus.RESOLVED), (0.60, CaseStatus.OWNED))
    return next((status for limit, status in bands if r < limit), CaseStatus.QUEUED)


def _decision_step(rng: random.Random, category: str, owner: str, currency: str) -> Step:
    kind, low, high = rng.choice(DECISION_OPTIONS[category])
    value = rng.randint(low, high)
    if kind in ("refund", "goodwill_credit", "fee_waiver"):
        return Step("decide", owner, kind, _in_currency(Decimal(value), currency, step=5), currency,
                    RATIONALES[kind])
    return Step("decide", owner, kind, Decimal(value), "", RATIONALES[kind])


def _random_steps(rng: random.Random, category: str, target: str, currency: str) -> list[Step]:
    draws = [rng.random() for _ in range(8)]
    if target == CaseStatus.QUEUED:
        return []
    agents = TEAM_AGENTS[team_slug_for(category)]
    owner = agents[int(draws[0] * len(agents))]
    steps = [Step("claim", owner)]
    if draws[1] < 0.3:
        steps.append(Step("note", owner, text=NOTES[int(draws[1] * 100) % len(NOTES)]))
    if len(agents) > 1 and draws[2] < 0.025:
        other = next(agent for agent in agents if agent != owner)
        steps.append(Step("handover", owner, to=other, text=HANDOVER_NOTES[int(draws[2] * 1000) % 3]))
        owner = other
    finished = target in (CaseStatus.RESOLVED, CaseStatus.CLOSED)
    decisions = (2 if draws[3] < 0.15 else 1 if draws[3] < 0.55 else 0) if finished else int(draws[3] < 0.25)
    steps.extend(_decision_step(rng, category, owner, currency) for _ in range(decisions))
    if not finished:
        return steps
    summaries = RESOLUTIONS[category]
    steps.append(Step("resolve", owner, text=summaries[0]))
    if target == CaseStatus.CLOSED:
        by_timer = draws[4] < 0.5
        steps.append(Step("close", None if by_timer else owner,
                          text="Closed automatically a week after resolution." if by_timer
                          else "Customer confirmed the resolution."))
    if draws[5] < 0.6:
        steps.append(Step("rate", rating=RATINGS[int(draws[6] * len(RATINGS))]))
    if target == CaseStatus.CLOSED and draws[7] < 0.025:
        steps.append(Step("reopen", owner, text=REOPEN_REASONS[int(draws[7] * 1000) % 2]))
        if draws[7] < 0.0125:
            steps.append(Step("resolve", owner, text=summaries[1]))
    return steps


def _story_cases(customers: list[CustomerPlan], now: datetime) -> list[CasePlan]:
    """The cases the walk-through relies on, opened in the last days."""
    by_tier = {tier: [c for c in customers if c.tier == tier and c.currency == "EUR"] for tier in CustomerTier.values}

    def pick(tier: str, index: int) -> CustomerPlan:
        pool = by_tier[tier] or [c for c in customers if c.currency == "EUR"] or customers
        return pool[index % len(pool)]

    eur = "EUR"
    refund = "refund"
    stories = [
        # alice: three fresh open cases with nothing decided yet (refund 200 works, 1,200 is over).
        (pick(CustomerTier.GOLD, 0), "Charged twice for the March subscription (invoice INV-770120)",
         CaseCategory.COMPLAINT, "189", 26, [Step("claim", "alice"),
                                             Step("note", "alice", text=NOTES[2])]),
        (pick(CustomerTier.PLATINUM, 0), "Sales promised a refund of 1,200 EUR that never came (contract C-558100)",
         CaseCategory.COMPLAINT, "1200", 20, [Step("claim", "alice")]),
        (pick(CustomerTier.SILVER, 0), "Renewal price up 18 %, customer weighing a competitor (contract C-559020)",
         CaseCategory.RENEWAL, "9600", 44, [Step("claim", "alice")]),
        # alice: the request waiting for maria.
        (pick(CustomerTier.GOLD, 1), "Outage on Monday cost a day of sales (incident INC-994471)",
         CaseCategory.CRISIS, "2400", 30,
         [Step("claim", "alice"),
          Step("request", "alice", refund, Decimal(1200), eur, story=True,
               text="Key account since 2016: the outage stopped their web shop for a full day. "
                    "Refunding a month's fee keeps them; my limit is 500.")]),
        # bob hands a case to alice: a fourth open case of hers with nothing used.
        (pick(CustomerTier.GOLD, 2), "Auto-renewal of contract C-559133 disputed by the new CFO",
         CaseCategory.RENEWAL, "14500", 52,
         [Step("claim", "bob"), Step("handover", "bob", to="alice", text=HANDOVER_NOTES[1])]),
        # the Retention queue: fresh, unclaimed.
        (pick(CustomerTier.STANDARD, 0), "Cancelled add-on still billed for three months (INV-770215)",
         CaseCategory.COMPLAINT, "87", 1, []),
        (pick(CustomerTier.PLATINUM, 1), "Board asks for a service review after two outages (account A-99120)",
         CaseCategory.HIGH_VALUE, "180000", 2, []),
        (pick(CustomerTier.SILVER, 1), "Copy of the signed contract C-559301 requested", CaseCategory.OTHER,
         "0", 3, []),
        # erin: a request mike approved, then the refund executed on the one-off grant.
        (pick(CustomerTier.SILVER, 2), "Setup fee billed although go-live slipped six weeks (contract C-560110)",
         CaseCategory.ONBOARDING, "600", 75,
         [Step("claim", "erin"),
          Step("request", "erin", refund, Decimal(600), eur, story=True,
               text="The delay was ours; the customer should not pay setup for a system they cannot use."),
          Step("approve", "mike", refund, text="Agreed: our delay, full setup fee back.", story=True),
          Step("decide", "erin", refund, Decimal(600), eur, "Setup fee refunded: the go-live delay was ours.",
               story=True),
          Step("resolve", "erin", text="Setup fee refunded in full; go-live booked."),
          Step("rate", rating=5)]),
        # dave: a request maria rejected, then what he could do himself.
        (pick(CustomerTier.STANDARD, 1), "Annual licence invoiced twice after the plan change (invoice INV-773010)",
         CaseCategory.BILLING_ERROR, "1500", 100,
         [Step("claim", "dave"),
          Step("request", "dave", refund, Decimal(1500), eur, story=True,
               text="Both invoices were paid; the customer wants the full second charge back today."),
          Step("reject", "maria", refund, story=True,
               text="The second invoice is only partly a duplicate: refund the 800 overlap now, "
                    "credit the rest on the next invoice."),
          Step("decide", "dave", refund, Decimal(800), eur, "Refunded the duplicated part of the licence.",
               story=True),
          Step("resolve", "dave", text="800 EUR refunded; the remaining 700 EUR credited on the next invoice.")]),
        # dave: suspended from goodwill credits, so he waives the fee instead.
        (pick(CustomerTier.SILVER, 3), "Late fee charged over the bank holiday (invoice INV-773550)",
         CaseCategory.BILLING_ERROR, "45", 120,
         [Step("claim", "dave"),
          Step("attempt", "dave", "goodwill_credit", Decimal(45), eur, "Goodwill for the bank-holiday late fee."),
          Step("decide", "dave", "fee_waiver", Decimal(45), eur, "Late fee waived: the bank holiday was ours.",
               story=True),
          Step("resolve", "dave", text="Late fee waived.")]),
        # carol hands a Billing case to dave.
        (pick(CustomerTier.GOLD, 3), "Wrong VAT rate on invoice INV-773780 for the Austrian entity",
         CaseCategory.BILLING_ERROR, "420", 8,
         [Step("claim", "carol"), Step("note", "carol", text=NOTES[0]),
          Step("handover", "carol", to="dave", text=HANDOVER_NOTES[0])]),
        *_ai_stories(pick),
    ]
    return [
        CasePlan(number=0, customer=customer.name, subject=subject, category=category, amount=Decimal(amount),
                 currency=eur, opened_at=now - timedelta(hours=hours), description=DESCRIPTIONS[category],
                 steps=steps)
        for customer, subject, category, amount, hours, steps in stories
    ]


def _ai_stories(pick) -> list[tuple]:
    """The AI agents' moments: routine cases they settle, and the moments they hand to a person."""
    eur = "EUR"
    standard = CustomerTier.STANDARD
    return [
        # ava-bot takes two routine Retention cases and settles one with a small goodwill credit.
        (pick(standard, 4), "Welcome pack never arrived (order SO-99410)", CaseCategory.OTHER, "30", 40,
         [Step("ai_take", "ava-bot", expect="owned"),
          Step("ai_decide", "ava-bot", "goodwill_credit", Decimal(20), eur, "Goodwill credit for the missing pack.",
               confidence=Decimal("0.920"), expect="executed",
               transcript=(("customer", "The welcome pack you promised never came."),
                           ("ai", "Sorry about that: I have sent a new one and credited 20 EUR."))),
          Step("resolve", "ava-bot", text="New welcome pack sent and 20 EUR credited."),
          Step("rate", rating=5)]),
        (pick(standard, 5), "Change of invoice e-mail address for account A-99230", CaseCategory.OTHER, "0", 6,
         [Step("ai_take", "ava-bot", expect="owned")]),
        # Over its authority (a fee waiver above its 30 EUR): a person owns the case, with the conversation.
        (pick(standard, 6), "Paper-invoice fee charged although e-invoicing was agreed (account A-99250)",
         CaseCategory.OTHER, "60", 28,
         [Step("ai_take", "ava-bot", expect="owned"),
          Step("ai_decide", "ava-bot", "fee_waiver", Decimal(60), eur,
               "Waive the paper-invoice fees: e-invoicing was agreed in March.", confidence=Decimal("0.880"),
               expect="handed_off", summary="Customer on e-invoicing since March, charged 2 x 30 EUR "
                                            "paper-invoice fees. Proposed waiving both.",
               transcript=(("customer", "We agreed on e-invoicing in March, yet you charged us for paper "
                                        "invoices twice."),
                           ("ai", "I can see two paper-invoice fees of 30 EUR. Waiving both is more than I may "
                                  "waive myself, so a colleague takes over now and has our whole conversation."))),
          Step("pick_up")]),
        # In shadow mode (refunds): recorded, nothing executed; bob, whose authority covers it, decides.
        (pick(standard, 7), "Refund for a duplicate order of printed manuals (order SO-99470)", CaseCategory.OTHER,
         "550", 60,
         [Step("ai_take", "ava-bot", expect="owned"),
          Step("ai_decide", "ava-bot", "refund", Decimal(550), eur, "Refund the duplicate order: same items, "
               "same day, one delivery.", confidence=Decimal("0.900"), expect="shadow",
               transcript=(("customer", "We were charged twice for the printed manuals, order SO-99470."),
                           ("ai", "I see two identical orders on the same day. A colleague confirms the "
                                  "refund of 550 EUR."))),
          Step("pick_up", "bob"),
          Step("decide", "bob", "refund", Decimal(550), eur, "Refunded the duplicate order, as ava-bot proposed.",
               story=True),
          Step("resolve", "bob", text="Duplicate order refunded in full."),
          Step("rate", rating=4)]),
        # sam-bot waives a small late fee on a Billing case.
        (pick(standard, 8), "Late fee charged twice on invoice INV-775020", CaseCategory.BILLING_ERROR, "15", 36,
         [Step("ai_take", "sam-bot", expect="owned"),
          Step("ai_decide", "sam-bot", "fee_waiver", Decimal(15), eur, "The second late fee is a duplicate.",
               confidence=Decimal("0.950"), expect="executed"),
          Step("resolve", "sam-bot", text="Duplicate late fee waived."),
          Step("rate", rating=4)]),
    ]


def build_plan(*, scale: float = 1.0, now: datetime) -> Plan:
    """Draw the demo data from the fixed seed; the same scale always gives the same plan."""
    rng = random.Random(SEED)
    customers = _plan_customers(rng, max(20, round(BASE_CUSTOMERS * scale)), now.date())
    weights = [TIER_CASE_WEIGHT[c.tier] for c in customers]
    cases = []
    for _ in range(max(30, round(BASE_CASES * scale))):
        customer = rng.choices(customers, weights=weights)[0]
        category = _weighted(rng, CATEGORY_WEIGHTS)
        age = timedelta(seconds=rng.randint(1800, HISTORY_DAYS * 86400))
        amount = _in_currency(_amount_at_stake_eur(rng, category, customer), customer.currency)
        if category == CaseCategory.OTHER and rng.random() < 0.5:
            amount = Decimal(0)
        cases.append(CasePlan(number=0, customer=customer.name, subject="", category=category, amount=amount,
                              currency=customer.currency, opened_at=now - age,
                              description=DESCRIPTIONS[category],
                              steps=_random_steps(rng, category, _target(rng, age), customer.currency)))
    cases.sort(key=lambda plan: plan.opened_at)  # oldest first, so references follow time
    for number, plan in enumerate(cases, start=1):
        plan.number = number
        plan.subject = _subject(rng, plan.category, number)
    stories = _story_cases(customers, now)
    for number, plan in enumerate(sorted(stories, key=lambda p: p.opened_at), start=len(cases) + 1):
        plan.number = number
    cases.extend(sorted(stories, key=lambda p: p.number))
    for plan in cases[: len(cases) - len(stories)]:
        _add_request(plan)
    for plan in cases:
        _schedule(plan, now)
    return Plan(customers=customers, cases=cases)


# Some owners ask for more than they may refund: one hop to their manager, who mostly approves.
REQUEST_SHARE = 0.08
REQUEST_CATEGORIES = (CaseCategory.COMPLAINT, CaseCategory.BILLING_ERROR, CaseCategory.CRISIS,
                      CaseCategory.ONBOARDING)
APPROVAL_SHARE = 0.8


def _add_request(plan: CasePlan) -> None:
    """Now and then, put a request for a larger refund (and its answer) right after the claim.

    Drawn from the case's own generator. The approver is whoever the request's pool names when it
    is decided; a request the rules refuse (within the owner's authority after all, nobody covering
    it that week) is skipped by the seeder like any generic step.
    """
    rng = random.Random(SEED * 7 + plan.number)
    claims = [index for index, step in enumerate(plan.steps) if step.action == "claim"]
    if not claims or plan.category not in REQUEST_CATEGORIES or rng.random() >= REQUEST_SHARE:
        return
    owner = plan.steps[claims[0]].actor
    amount = _in_currency(Decimal(rng.randrange(900, 1900, 50)), plan.currency, step=50)
    approved = rng.random() < APPROVAL_SHARE
    steps = [
        Step("request", owner, "refund", amount, plan.currency,
             "The customer lost more than my limit covers; refunding it in full keeps the account."),
        Step("approve" if approved else "reject", None, "refund",
             text="Agreed: the evidence supports a full refund." if approved
             else "Refund what you may now and credit the rest on the next invoice."),
    ]
    if approved:
        steps.append(Step("decide", owner, "refund", amount, plan.currency, "Refunded in full as approved."))
    plan.steps[claims[0] + 1:claims[0] + 1] = steps


# Hours after the previous step (low, high): how long each kind of step takes to happen.
STEP_DELAY_HOURS = {
    "claim": (0.1, 4), "note": (0.5, 20), "handover": (2, 30), "decide": (0.2, 24), "attempt": (0.2, 24),
    "request": (0.2, 8), "approve": (0.5, 6), "reject": (0.5, 6), "resolve": (1, 72), "close": (24, 120),
    "rate": (2, 96), "reopen": (24, 240), "ai_take": (0.02, 0.3), "ai_decide": (0.02, 0.3), "pick_up": (0.1, 2),
}


def _schedule(plan: CasePlan, now: datetime) -> None:
    """Give every step of `plan` its instant, in order, between the opening and now.

    Drawn from a generator of the case's own, so the rest of the plan does not depend on it. A
    decision right after an approval follows within two hours (the one-off grant is fresh), and a
    case whose steps would run past now is compressed into the time it has had.
    """
    rng = random.Random(SEED * 1_000 + plan.number)
    offsets, elapsed, previous = [], 0.0, ""
    for step in plan.steps:
        low, high = (0.1, 2) if previous == "approve" else STEP_DELAY_HOURS[step.action]
        elapsed += rng.uniform(low, high)
        offsets.append(elapsed)
        previous = step.action
    available = (now - plan.opened_at).total_seconds() / 3600 * 0.95
    shrink = min(1.0, available / elapsed) if elapsed else 1.0
    for step, offset in zip(plan.steps, offsets, strict=True):
        step.at = plan.opened_at + timedelta(hours=offset * shrink)


