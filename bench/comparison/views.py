"""Two yardsticks for POST /api/v1/decisions/, served beside the product's API by bench/urls.py.

- bare: token authentication, a validated body and one INSERT: the least a DRF write can cost.
- naive: what a decision must do at the least: lock the agent's counter, raise it only if the cap
  allows, insert the decision, and append an audit event to one global hash chain (lock the head,
  insert the event, move the head), all in one transaction.

Both use the product's API stack (edges.api.views.base.ApiMixin and the REST_FRAMEWORK defaults:
token authentication, the JSON parser, the user throttle), so the difference measured is the work.
"""

from __future__ import annotations

import hashlib
import json

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from edges.api.views.base import ApiMixin, body

from .models import BareRow, NaiveAuditEvent, NaiveAuditHead, NaiveCounter, NaiveDecision

GENESIS_HASH = "0" * 64
HEAD_ID = 1


class DecisionIn(serializers.Serializer):
    case = serializers.IntegerField(min_value=1)
    kind = serializers.SlugField(max_length=40)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    currency = serializers.CharField(max_length=3)
    rationale = serializers.CharField(max_length=2000)


class Bare(ApiMixin, APIView):
    def post(self, request):
        data = body(DecisionIn, request)
        row = BareRow.objects.create(agent=request.user, case_id=data["case"], amount=data["amount"],
                                     currency=data["currency"], rationale=data["rationale"],
                                     created_at=timezone.now())
        return Response({"id": row.pk}, status=status.HTTP_201_CREATED)


def event_hash(fields: dict) -> str:
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _hashed_fields(event: NaiveAuditEvent) -> dict:
    return {"seq": event.seq, "occurred_at": event.occurred_at.isoformat(), "actor_id": event.actor_id,
            "action": event.action, "object_id": event.object_id, "after": event.after,
            "prev_hash": event.prev_hash}


class Naive(ApiMixin, APIView):
    def post(self, request):
        data = body(DecisionIn, request)
        now = timezone.now()
        with transaction.atomic():
            counter = NaiveCounter.objects.select_for_update().get(agent=request.user)
            raised = NaiveCounter.objects.filter(pk=counter.pk, used__lte=F("cap") - data["amount"]).update(
                used=F("used") + data["amount"])
            if not raised:
                return Response({"code": "authority_denied", "message": "Over the cap."},
                                status=status.HTTP_403_FORBIDDEN)
            decision = NaiveDecision.objects.create(agent=request.user, case_id=data["case"], amount=data["amount"],
                                                    currency=data["currency"], rationale=data["rationale"],
                                                    created_at=now)
            head = NaiveAuditHead.objects.select_for_update().get(pk=HEAD_ID)
            event = NaiveAuditEvent(seq=head.seq + 1, occurred_at=now, actor_id=request.user.pk,
                                    action="decision.executed", object_id=str(decision.pk),
                                    after={"case": data["case"], "amount": str(data["amount"]),
                                           "currency": data["currency"]},
                                    prev_hash=head.hash)
            event.hash = event_hash(_hashed_fields(event))
            event.save(force_insert=True)
            NaiveAuditHead.objects.filter(pk=HEAD_ID).update(seq=event.seq, hash=event.hash)
        return Response({"id": decision.pk}, status=status.HTTP_201_CREATED)


def naive_chain_problems() -> list[str]:
    """Return what is wrong with the naive chain (empty when every event links and hashes, and the head is the last)."""
    problems, prev_hash, seq = [], GENESIS_HASH, 0
    for event in NaiveAuditEvent.objects.order_by("seq").iterator(chunk_size=5000):
        seq += 1
        if event.seq != seq:
            problems.append(f"gap: expected seq {seq}, found {event.seq}")
            seq = event.seq
        if event.prev_hash != prev_hash:
            problems.append(f"seq {event.seq}: prev_hash does not match the previous event")
        if event.hash != event_hash(_hashed_fields(event)):
            problems.append(f"seq {event.seq}: hash does not match its fields")
        prev_hash = event.hash
    head = NaiveAuditHead.objects.get(pk=HEAD_ID)
    if (head.seq, head.hash) != (seq, prev_hash):
        problems.append(f"head says #{head.seq}, the chain ends at #{seq}")
    return problems
