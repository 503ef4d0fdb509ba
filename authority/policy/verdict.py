"""The Verdict: the answer to "may agent A decide K of amount X on case C now?"."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal

from h2h_core.audit import snapshot_value


@dataclass(frozen=True)
class GrantRef:
    id: int
    lineage: int
    version: int
    level: str
    effect: str
    subject: str


@dataclass(frozen=True)
class Consumption:
    """One counter a decision raises: `used + amount <= cap`, or unconditionally when cap is None."""

    key: str
    scope: str
    amount: Decimal
    cap: Decimal | None
    currency: str
    period: str = "none"
    bucket_start: date | None = None
    grant_id: int | None = None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    kind: str
    unit: str
    amount: Decimal
    currency: str
    evaluated_at: datetime
    reasons: list[str]
    deciding_grants: list[GrantRef] = field(default_factory=list)
    level: str | None = None
    suspended: bool = False
    via_one_off: int | None = None
    counted_amount: Decimal | None = None
    counted_currency: str = ""
    rate: Decimal | None = None
    rate_date: date | None = None
    per_case_limit: Decimal | None = None
    per_case_used: Decimal | None = None
    per_case_headroom: Decimal | None = None
    period: str = "none"
    period_limit: Decimal | None = None
    period_used: Decimal | None = None
    period_headroom: Decimal | None = None
    period_resets_at: datetime | None = None
    # Who a request for this amount would go to (authority.policy.approvals.approver_pool), named
    # only on a refusal an approval can lift; `no_approver` says why nobody can, and what to do.
    approvers: list[str] = field(default_factory=list)
    approvers_are_fallback: bool = False
    no_approver: str = ""
    consumptions: list[Consumption] = field(default_factory=list)

    @property
    def deciding_grant_id(self) -> int | None:
        return self.deciding_grants[0].id if self.deciding_grants else None

    @property
    def over_limit(self) -> bool:
        """Refused, not suspended, and somebody can approve it: one authority request can fix it."""
        return not self.allowed and not self.suspended and bool(self.approvers)

    def as_dict(self) -> dict:
        """Return plain JSON (decimals as strings) for storage, audit and the API.

        What `snapshot_value` makes of `dataclasses.asdict(self)` without the consumptions, read
        field by field: asdict deep-copies every value first (the consumptions too), which cost
        half a millisecond of every authority check.
        """
        data = {name: getattr(self, name) for name in _STORED_FIELDS}
        data["deciding_grants"] = [asdict(ref) for ref in self.deciding_grants]
        return snapshot_value(data)


_STORED_FIELDS = tuple(f.name for f in fields(Verdict) if f.name != "consumptions")
