"""The simulated organisation's crews, and running them side by side, each in a process of its own.

A simulation's Python work (the services, viewflow, the ORM) takes one core; on PostgreSQL the
database's work runs beside it. Crews let a run use the machine's other cores: each team's people
are split between the crews, each crew draws its cases and its story from a generator of its own,
on a clock of its own, and a process can run one crew while another runs the other. On SQLite, one
writer at a time, the crews run together in one process.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, connections

CREWS = 2


@dataclass
class Crew:
    """A part of the simulated organisation, with a random generator of its own.

    Each team's people are split between the crews (a team with fewer people than crews is in each
    whole); customers, AI agents and approvers are everyone's. A crew's story depends on the seed and
    on its index alone, except where crews meet: a person of another crew who receives an AI agent's
    hand-off (the product picks who), and the monthly caps of the approvers and AI agents the crews
    share, when one runs out. So two crews run side by side tell, up to those meetings, what they tell
    run together.
    """

    index: int
    rng: random.Random
    agents: dict[str, list]  # team slug -> this crew's people of that team
    cases: int  # how many cases arrive for this crew
    key_prefix: str  # its cases' idempotency keys begin with this


def run_key_prefix(start: datetime) -> str:
    """What the idempotency keys of every case of a run that starts at `start` begin with."""
    return f"sim:{start:%Y%m%d}:"


def crews_for(*, agents: dict[str, list], seed: int, cases: int, start: datetime) -> list[Crew]:
    """The run's crews: the people split by turns, the cases as evenly as they go."""
    return [
        Crew(index=index, rng=random.Random(f"{seed}:{index}"),
             agents={team: people[index::CREWS] if len(people) >= CREWS else list(people)
                     for team, people in agents.items()},
             cases=cases // CREWS + (1 if index < cases % CREWS else 0),
             key_prefix=f"{run_key_prefix(start)}{index}:")
        for index in range(CREWS)
    ]


def default_workers() -> int:
    """How many processes run the crews: one on SQLite (one writer at a time), else one a core."""
    if connection.vendor == "sqlite":
        return 1
    return max(1, min(CREWS, os.cpu_count() or 1))


class WorkerFailed(RuntimeError):
    """A process running crews failed; the message holds its traceback."""


def run_side_by_side(run: Callable[[list[Crew]], object], groups: list[list[Crew]]) -> list:
    """Return `run(group)` for each group, each in a forked process of its own (in this one if a single group).

    The processes inherit everything built so far (the cast, the settings); each opens its own
    database connection, so this one's are closed first.
    """
    if len(groups) == 1:
        return [run(groups[0])]
    connections.close_all()
    context = multiprocessing.get_context("fork")
    started = []
    for group in groups:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(run, group, send), daemon=True)
        process.start()
        send.close()
        started.append((receive, process))
    results, failures = [], []
    for receive, process in started:
        try:
            status, value = receive.recv()
        except EOFError:
            status, value = "error", "the process ended without an answer"
        process.join()
        if status != "ok":
            failures.append(f"worker {process.pid} (exit code {process.exitcode}): {value}")
        results.append(value)
    if failures:
        raise WorkerFailed("\n".join(failures))
    return results


def _child(run: Callable[[list[Crew]], object], group: list[Crew], send) -> None:
    try:
        send.send(("ok", run(group)))
    except BaseException:  # the parent reports it; nothing is swallowed
        send.send(("error", traceback.format_exc()))
    finally:
        connections.close_all()
        send.close()
