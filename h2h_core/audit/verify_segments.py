"""Walk a long chain in several processes at once (PostgreSQL): a fast path that proves it intact or steps aside.

One Python process re-hashes about 130,000 events a second on a quiet 2-core machine, and that is
nearly the whole cost of a verification (docs/performance.md), so a long chain is cut into
consecutive segments walked side by side: the verifying process walks the first, with its usual
walk (`verify._ChainWalk`), and one process per further segment walks the others
(`multiprocessing`, spawned: safe beside the worker's threads). All of them read one snapshot:
the verifying transaction exports it (`pg_export_snapshot`) and each helper imports it, as
`pg_dump --jobs` does.

A helper proves its segment on its own terms: gapless numbers from its first entry, each entry's
content hashing to its stored hash, each linking to the one before, none beyond the head. What it
cannot know, the link into its first entry, the verifying process checks when it joins the
segments in order: a segment must begin right after the last one ended and link to its last hash.

The Merkle roots the signed checkpoints are checked against come out of the segments too. Segment
borders lie on multiples of BLOCK entries, so a helper hands back the root of each whole block of
its segment (a perfect subtree of the tree) and, for a checkpoint inside a block, the right edge of
that block's part up to it (`TreeAccumulator.stack`, subtrees smaller than a block): the tree's
right edge at any size is then the verifying process's edge after the blocks before it, followed by
that part (RFC 9162's tree over n entries splits n by its binary digits, highest first).

The fast path only ever answers "intact". On anything else (a helper's segment did not verify,
segments that do not join, a helper that failed) it returns 0, and the chain is walked again by
one process, whose walk names the first bad entry as it always has. A break in the verifying
process's own segment, the first, is that walk's verdict already: it is raised at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from django.db import connection

from h2h_core.helper_processes import django_setup
from h2h_core.transactions import read_snapshot

from .stream import SealedRow, sealed_rows
from .tree import TreeAccumulator

logger = logging.getLogger("h2h.audit")

#: A chain segment's borders are multiples of this (a power of two: a block is a perfect subtree).
BLOCK = 1024
#: Below this many entries to walk, starting the helpers costs more than they save (about 0.6 s each).
PARALLEL_FROM = 200_000
#: Entries one process walks while a helper starts (about 0.6 s: Python, Django) on the 2-core
#: machine of docs/performance.md; the verifying process takes them on besides its share.
HEAD_START = 50_000
#: Walkers at most, however many cores: the database serves every walker's rows too.
MAX_PROCESSES = 4

_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")


def default_processes() -> int:
    """How many processes walk a long chain by default: one per core, up to MAX_PROCESSES."""
    return max(1, min(MAX_PROCESSES, os.cpu_count() or 1))


class Walk(Protocol):
    """What this module uses of verify._ChainWalk: the state of the walk in the verifying process."""

    tree: TreeAccumulator
    roots_at: set[int]
    roots: dict[int, str]
    count: int
    last_seq: int
    last_hash: str
    last_prev_hash: str | None
    before_last: tuple[int, str]

    def check(self, entry: SealedRow) -> None: ...


@dataclass
class Segment:
    """What a helper found in its segment (after_seq, up_to_seq]: intact, and what the join needs."""

    intact: bool
    count: int = 0
    first_prev_hash: str = ""
    last_seq: int = 0
    last_hash: str = ""
    last_prev_hash: str = ""
    blocks: list[bytes] = field(default_factory=list)  # roots of its whole blocks, in order
    tail: list[tuple[int, bytes]] = field(default_factory=list)  # the right edge of its last, partial block
    parts: dict[int, list[tuple[int, bytes]]] = field(default_factory=dict)  # at each checkpoint: its block's edge


def borders(*, after_seq: int, head_seq: int, processes: int, block: int = BLOCK) -> list[int]:
    """Where the segments of (after_seq, head_seq] end, but the last: multiples of `block`, in order.

    The verifying process starts at once, a helper only after its start-up, so the first segment
    is longer by what one process walks meanwhile (HEAD_START, at most a quarter of a share);
    the helpers share the rest evenly.
    """
    total = head_seq - after_seq
    lead = min(HEAD_START, total // (4 * processes))
    first = (total + lead * (processes - 1)) // processes
    rest = total - first
    cuts = {(after_seq + first + rest * part // (processes - 1)) // block * block for part in range(processes - 1)}
    return sorted(cut for cut in cuts if after_seq < cut < head_seq)


def walk_in_segments(state: Walk, *, after_seq: int | None, head_seq: int, processes: int,
                     chunk_size: int) -> int:
    """Walk the chain after `after_seq` into `state` in several processes; return how many, 0 when that proved nothing.

    The caller holds the read snapshot (a PostgreSQL REPEATABLE READ transaction). On success `state`
    holds the whole walk as if one process had made it (ready for `finish()`); on 0 it is spoilt
    and the caller walks again. Errors of the caller's own segment (`state.check`) propagate.
    """
    start, block = after_seq if after_seq is not None else 0, BLOCK
    cuts = borders(after_seq=start, head_seq=head_seq, processes=processes, block=block)
    if not cuts:
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
    ranges = [(cut, nxt) for cut, nxt in zip(cuts, [*cuts[1:], None], strict=True)]
    database = {name: connection.settings_dict.get(name) for name in ("NAME", "USER", "PASSWORD", "HOST", "PORT")}
    roots_at = sorted(state.roots_at)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=len(ranges), mp_context=context, initializer=django_setup,
                               initargs=(database,))
    try:  # a helper that fails decides nothing (one process walks instead); this process's own errors propagate
        try:
            futures = [
                pool.submit(_helper_walk, snapshot=snapshot, after_seq=low, up_to_seq=high, head_seq=head_seq,
                            roots_at=[seq for seq in roots_at if seq > low and (high is None or seq <= high)],
                            block=block, chunk_size=chunk_size)
                for low, high in ranges
            ]
        except Exception:
            logger.warning("Could not start chain verification helpers; one process walks", exc_info=True)
            return 0
        for row in sealed_rows(after_seq=after_seq, up_to_seq=cuts[0], chunk_size=chunk_size):
            state.check(row)
        try:
            segments = [future.result() for future in futures]
        except Exception:
            logger.warning("A chain verification helper failed; one process walks", exc_info=True)
            return 0
    finally:
        # Never wait for helpers still walking: after a break in the first segment (the verdict:
        # their entries come after it) or a failed helper, what they find is not needed.
        pool.shutdown(wait=False, cancel_futures=True)
    joined = all(_join(state, segment, after_seq=low, block=block)
                 for segment, (low, _high) in zip(segments, ranges, strict=True))
    return 1 + len(ranges) if joined else 0


def _join(state: Walk, segment: Segment, *, after_seq: int, block: int) -> bool:
    """Append a helper's segment to the walk; False when it does not verify or does not follow on."""
    if not segment.intact or segment.count == 0:
        return False
    if state.last_seq != after_seq or segment.first_prev_hash != state.last_hash:
        return False
    tree, pushed, level = state.tree, 0, block.bit_length() - 1
    for seq in sorted(segment.parts):
        for value in segment.blocks[pushed:(seq - seq % block - after_seq) // block]:
            tree.push(level, value)
            pushed += 1
        state.roots[seq] = tree.root(then=segment.parts[seq])
    for value in segment.blocks[pushed:]:
        tree.push(level, value)
    for tail_level, value in segment.tail:
        tree.push(tail_level, value)
    state.count += segment.count
    state.before_last = (segment.last_seq - 1, segment.last_prev_hash)
    state.last_seq, state.last_hash, state.last_prev_hash = segment.last_seq, segment.last_hash, segment.last_prev_hash
    return True


def walk_segment(*, after_seq: int, up_to_seq: int | None, head_seq: int, roots_at: list[int], block: int,
                 chunk_size: int) -> Segment:
    """Walk the entries of (after_seq, up_to_seq] (to the end when None) on their own; after_seq is a block border."""
    checkpoints = set(roots_at)
    expected, previous, first_prev, last_prev = after_seq + 1, None, "", ""
    tree, blocks, parts = TreeAccumulator(), [], {}
    for row in sealed_rows(after_seq=after_seq, up_to_seq=up_to_seq, chunk_size=chunk_size):
        if row.seq != expected or row.seq > head_seq or not row.content_intact:
            return Segment(intact=False)
        if previous is None:
            first_prev = row.prev_hash
        elif row.prev_hash != previous:
            return Segment(intact=False)
        last_prev, previous = row.prev_hash, row.hash
        expected += 1
        tree.append(row.hash)
        if tree.size == block:
            blocks.append(tree.stack[0][1])
            tree = TreeAccumulator()
        if row.seq in checkpoints:
            parts[row.seq] = list(tree.stack)
    return Segment(intact=True, count=expected - after_seq - 1, first_prev_hash=first_prev, last_seq=expected - 1,
                   last_hash=previous or "", last_prev_hash=last_prev, blocks=blocks, tail=list(tree.stack),
                   parts=parts)


def _helper_walk(*, snapshot: str, **segment) -> Segment:
    if not _SNAPSHOT_ID.match(snapshot):
        raise ValueError(f"not a PostgreSQL snapshot id: {snapshot!r}")
    with read_snapshot():
        with connection.cursor() as cursor:
            # Before any query of the transaction. A utility statement takes no bound parameters:
            # the id's format was checked above.
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        return walk_segment(**segment)
