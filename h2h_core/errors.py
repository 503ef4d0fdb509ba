"""Domain errors: raised by services, turned into clear messages by every edge (web, API, admin)."""


class DomainError(Exception):
    """A rule of the domain refused the action; nothing was changed except its audit record."""

    code = "refused"
    status = 409

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class NotAllowed(DomainError):
    code = "not_allowed"
    status = 403


class NotCaseOwner(NotAllowed):
    code = "not_case_owner"


class CaseNotOpen(DomainError):
    code = "case_not_open"


class StaleView(DomainError):
    """The person acted on a page of the case that no longer shows its state."""

    code = "stale_view"


class AlreadyDecided(DomainError):
    code = "already_decided"


class IdempotencyConflict(DomainError):
    """The idempotency key was used before with a different payload."""

    code = "idempotency_conflict"
    status = 422
