"""Errors of the authority domain."""

from h2h_core.errors import AlreadyDecided, CaseNotOpen, DomainError, IdempotencyConflict, NotAllowed, NotCaseOwner

from .policy.verdict import Verdict


class AuthorityDenied(DomainError):
    """The verdict refused the decision; carries it so every edge can show reasons and headroom."""

    code = "authority_denied"
    status = 403

    def __init__(self, verdict: Verdict):
        super().__init__(" ".join(verdict.reasons) or "Not within your authority.", verdict=verdict.as_dict())
        self.verdict = verdict


__all__ = [
    "AlreadyDecided",
    "AuthorityDenied",
    "CaseNotOpen",
    "DomainError",
    "IdempotencyConflict",
    "NotAllowed",
    "NotCaseOwner",
]
