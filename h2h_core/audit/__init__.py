"""The tamper-evident audit log: record events, verify the chain, sign checkpoints."""

from .chain import GENESIS_HASH, canonical_json, event_hash
from .record import audit_record, snapshot_value
from .sealer import audit_seal

__all__ = ["GENESIS_HASH", "audit_record", "audit_seal", "canonical_json", "event_hash", "snapshot_value"]
