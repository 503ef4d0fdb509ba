"""The workflow timers' sweep: service levels, approval windows, follow-up, adoption.

Viewflow keeps every timer as a task row with its due moment; this fires the due ones. It is safe
with several sweeps at once (each timer is re-checked under its flow lock), and the worker's
schedule runs it every H2H_TIMER_SWEEP_SECONDS under a lease so that runs never overlap, which the
start timers (one upkeep process a day) need.
"""

from __future__ import annotations

from viewflow.workflow.timers import fire_due_conditions, fire_due_start_timers, fire_due_timers


def timers_fire() -> dict:
    """Fire every due timer, start due scheduled processes, fire met conditions; return the counts."""
    return {
        "timers": fire_due_timers(),
        "started": fire_due_start_timers(),
        "conditions": fire_due_conditions(),
    }
