"""Old idempotency records are purged; recent ones stay, so retries still replay."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from authority.models import IdempotencyRecord
from tests.factories import UserFactory


@pytest.mark.django_db
def test_purge_removes_only_records_older_than_the_retention():
    # given a record from ten days ago and one from an hour ago
    user = UserFactory(username="integrator")
    now = timezone.now()
    old = IdempotencyRecord.objects.create(user=user, key="old", endpoint="/x", fingerprint="f",
                                           created_at=now - timedelta(days=10))
    recent = IdempotencyRecord.objects.create(user=user, key="recent", endpoint="/x", fingerprint="f",
                                              created_at=now - timedelta(hours=1))
    # when the purge runs with the default week
    call_command("purge_idempotency_keys")
    # then only the old one is gone
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not IdempotencyRecord.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db
def test_purge_refuses_a_retention_shorter_than_a_day():
    with pytest.raises(CommandError):
        call_command("purge_idempotency_keys", days=0.1)
