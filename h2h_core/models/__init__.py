from .audit import AuditCheckpoint, AuditEvent, AuditHead
from .cases import Case, CaseCategory, CaseEvent, CaseStatus, Customer, CustomerTier
from .organisation import Organisation, Role, Team

__all__ = [
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "Case",
    "CaseCategory",
    "CaseEvent",
    "CaseStatus",
    "Customer",
    "CustomerTier",
    "Organisation",
    "Role",
    "Team",
]
