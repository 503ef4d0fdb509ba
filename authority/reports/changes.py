"""Authority change history and review sampling for the auditor."""



from django.db.models import (
    QuerySet,
)

from authority.models import (
    Decision,
    Grant,
    GrantStatus,
)
from authority.reports.decision_log import capped_count

# --- authority change history -----------------------------------------------------------------


def grant_changes(*, kind: str = "", level: str = "", maker: str = "", status: str = "") -> QuerySet[Grant]:
    """Every grant version, newest first, with maker, checker, the version it replaced and its state."""
    qs = Grant.objects.with_state().select_related(
        "kind", "subject_user", "subject_team", "subject_role", "granted_by", "confirmed_by", "supersedes", "case"
    )
    if kind:
        qs = qs.filter(kind__code=kind)
    if level == "one-off":
        qs = qs.filter(case__isnull=False)
    elif level == "person":
        qs = qs.filter(subject_user__isnull=False, case__isnull=True)
    elif level == "team":
        qs = qs.filter(subject_team__isnull=False)
    elif level == "role":
        qs = qs.filter(subject_role__isnull=False)
    if maker:
        qs = qs.filter(granted_by__username=maker)
    if status in GrantStatus.values:
        qs = qs.filter(status=status)
    return qs.order_by("-id")


GRANT_FIELDS = (
    ("effect", "Effect"),
    ("shadow", "Mode"),
    ("per_case_limit", "Per case"),
    ("period_limit", "Period cap"),
    ("period", "Period"),
    ("currency", "Currency"),
    ("scope_categories", "Case categories"),
    ("scope_tiers", "Customer tiers"),
    ("valid_from", "Valid from"),
    ("valid_until", "Valid until"),
)


def grant_diff(old, new) -> list[dict]:
    """Field-by-field difference between two grant versions (or a grant and proposed terms)."""
    rows = []
    for name, label in GRANT_FIELDS:
        before = getattr(old, name, None) if old is not None else None
        after = getattr(new, name, None)
        if isinstance(before, tuple | list):
            before = sorted(before)
        if isinstance(after, tuple | list):
            after = sorted(after)
        rows.append({"field": name, "label": label, "before": before, "after": after,
                     "changed": old is not None and before != after,
                     "before_currency": getattr(old, "currency", "") or "", "after_currency": new.currency or ""})
    return rows


# --- review sampling ----------------------------------------------------------------------------

SAMPLE_SMALL = 50_000
SAMPLE_ROUNDS = 5


def sample_decisions(qs: QuerySet[Decision], *, size: int, seed: int) -> list[int]:
    """Draw a uniform random sample of `size` decision ids from `qs`, reproducible from `seed`.

    Up to 50,000 matching decisions: their ids are read once (one query) and sampled. Beyond: ids
    are drawn at random between the smallest and largest matching id and looked up by primary
    key, in a few rounds (decision ids have no gaps worth speaking of: decisions are never
    deleted), so a million rows cost a handful of indexed queries, never ORDER BY random().
    """
    import random

    rng = random.Random(seed)
    qs = qs.order_by()
    total, more = capped_count(qs, cap=SAMPLE_SMALL)
    if not more:
        ids = sorted(qs.values_list("pk", flat=True))
        return sorted(rng.sample(ids, min(size, len(ids))))
    from django.db.models import Max, Min

    bounds = qs.aggregate(lo=Min("pk"), hi=Max("pk"))
    lo, hi = bounds["lo"], bounds["hi"]
    chosen: set[int] = set()
    density = 1.0
    for _ in range(SAMPLE_ROUNDS):
        wanted = size - len(chosen)
        if wanted <= 0:
            break
        draws = {rng.randint(lo, hi) for _ in range(min(int(wanted / density * 1.3) + 5, 20_000))} - chosen
        found = set(qs.filter(pk__in=draws).values_list("pk", flat=True))
        density = max(len(found) / max(len(draws), 1), 0.01)
        chosen |= set(rng.sample(sorted(found), wanted)) if len(found) > wanted else found
    return sorted(chosen)[:size]
