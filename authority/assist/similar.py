"""Similar resolved cases and what resolved them: TF-IDF with cosine similarity, in plain Python.

The corpus is the newest resolved or closed cases the user may see (never another team's), read in
one query and scored per request; their decisions come in a second query, for the few shown.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from authority.models import Decision
from authority.policy import cases_visible_to, decisions_visible_to
from h2h_core.models import Case, CaseStatus

# Enough history to find precedent, small enough to score on every page view (a few ms per 100).
POOL_SIZE = 2000
SHOWN = 5
# Below this cosine the texts share little more than a common word.
MIN_SCORE = 0.1
# The subject says what the problem is in a few words; it counts twice as much as the description.
SUBJECT_WEIGHT = 2
CATEGORY_BOOST = 0.1

_WORD = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset((
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "being", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have",
    "he", "her", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of",
    "on", "once", "only", "or", "our", "out", "over", "please", "same", "she", "so", "than", "that", "the",
    "their", "them", "then", "there", "these", "they", "this", "those", "to", "too", "up", "us", "very", "was",
    "we", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you",
    "your",
))


@dataclass(frozen=True)
class SimilarCase:
    case: Case
    score: float
    decisions: list[Decision] = field(default_factory=list)


def tokens(text: str) -> list[str]:
    """Return the content words of `text`, lower-cased, with a plural -s folded into the singular."""
    words = []
    for word in _WORD.findall(text.casefold()):
        if word in _STOPWORDS or len(word) < 2:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.append(word)
    return words


def _terms(case: Case) -> Counter:
    return _terms_of_text(case.subject, case.description or "")


@lru_cache(maxsize=2 * POOL_SIZE)
def _terms_of_text(subject: str, description: str) -> Counter:
    # Keyed by the text itself, so an edited case is never scored on its old words; tokenising the
    # whole pool again on every page view would cost more than the rest of the page. Never mutated.
    return Counter(tokens(subject) * SUBJECT_WEIGHT + tokens(description))


def _weights(counts: Counter, idf: dict[str, float]) -> dict[str, float]:
    vector = {term: (1 + math.log(n)) * idf[term] for term, n in counts.items()}
    norm = math.sqrt(sum(w * w for w in vector.values()))
    return {term: w / norm for term, w in vector.items()} if norm else {}


def rank(target: Case, candidates: list[Case]) -> list[tuple[float, Case]]:
    """Return (score, case) for the candidates like `target`, best first: cosine of TF-IDF vectors."""
    counts = [_terms(c) for c in candidates]
    wanted = _terms(target)
    if not wanted:
        return []
    documents = len(candidates) + 1
    frequency = Counter(term for c in counts for term in c)
    frequency.update(wanted.keys())
    idf = {term: math.log((1 + documents) / (1 + n)) + 1 for term, n in frequency.items()}
    query = _weights(wanted, idf)
    scored = []
    for candidate, terms in zip(candidates, counts, strict=True):
        shared = query.keys() & terms.keys()
        if not shared:
            continue
        # Only the shared terms' weights are needed, and the norm: no vector for each candidate.
        norm = math.sqrt(sum(((1 + math.log(n)) * idf[t]) ** 2 for t, n in terms.items()))
        score = sum(query[t] * (1 + math.log(terms[t])) * idf[t] for t in shared) / norm
        if score < MIN_SCORE:
            continue
        if candidate.category == target.category:
            score += CATEGORY_BOOST
        scored.append((score, candidate))
    scored.sort(key=lambda pair: (-pair[0], -pair[1].pk))
    return scored


def similar_resolved_cases(*, user, case: Case, shown: int = SHOWN, pool: int = POOL_SIZE) -> list[SimilarCase]:
    """Return the resolved or closed cases `user` may see that read most like `case`. Two queries."""
    candidates = list(
        cases_visible_to(user).filter(status__in=[CaseStatus.RESOLVED, CaseStatus.CLOSED]).exclude(pk=case.pk)
        .only("pk", "subject", "description", "category", "rating", "status").order_by("-pk")[:pool]
    )
    best = rank(case, candidates)[:shown]
    if not best:
        return []
    decisions: dict[int, list[Decision]] = {}
    for decision in (decisions_visible_to(user).filter(case_id__in=[c.pk for _, c in best])
                     .select_related("kind").order_by("executed_at", "pk")):
        decisions.setdefault(decision.case_id, []).append(decision)
    return [SimilarCase(case=c, score=score, decisions=decisions.get(c.pk, [])) for score, c in best]
