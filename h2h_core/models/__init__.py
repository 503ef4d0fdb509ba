from .audit import AuditCheckpoint, AuditEvent, AuditHead
from .cases import Case, CaseCategory, CaseEvent, CaseStatus, Customer, CustomerTier
from .mail import MailStatus, OutboundMail
from .organisation import Organisation, Role, Team
from .tokens import ApiToken
from .verification import ChainVerification

__all__ = [
    "ApiToken",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "Case",
    "CaseCategory",
    "CaseEvent",
    "CaseStatus",
    "ChainVerification",
    "Customer",
    "CustomerTier",
    "MailStatus",
    "Organisation",
    "OutboundMail",
    "Role",
    "Team",
]
