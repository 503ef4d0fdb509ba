from .ai_agents import AiAgent, HandOff, HandOffReason
from .audit import AuditCheckpoint, AuditEvent, AuditHead, AuditTreeNode
from .cases import Case, CaseCategory, CaseEvent, CaseStatus, Customer, CustomerTier
from .customers import CustomerNote
from .mail import MailStatus, OutboundMail
from .organisation import Organisation, Role, Team
from .presence import CasePresence
from .tokens import ApiToken
from .verification import ChainVerification

__all__ = [
    "AiAgent",
    "HandOff",
    "HandOffReason",
    "ApiToken",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "AuditTreeNode",
    "Case",
    "CaseCategory",
    "CaseEvent",
    "CasePresence",
    "CaseStatus",
    "ChainVerification",
    "Customer",
    "CustomerNote",
    "CustomerTier",
    "MailStatus",
    "Organisation",
    "OutboundMail",
    "Role",
    "Team",
]
