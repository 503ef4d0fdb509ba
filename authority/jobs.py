"""The authority domain's jobs: webhook deliveries and their sweep (what they do: authority/webhooks.py)."""

from __future__ import annotations

from authority import webhooks
from h2h_core.jobs import task


@task(queue_name="webhooks")
def webhook_deliver(delivery_id: int) -> str:
    """Attempt one webhook delivery if it is due and free; retries are enqueued as new jobs."""
    return webhooks.attempt(delivery_id).text


@task(queue_name="webhooks")
def webhook_sweep() -> str:
    """Re-enqueue due deliveries no job will attempt, fan out messages without deliveries (every minute)."""
    return webhooks.sweep().summary()
