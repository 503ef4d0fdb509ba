"""The customer's tone, from the words they wrote: VADER, whose lexicon ships inside its package."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from h2h_core.models import Case

# VADER's own convention puts "negative" at a compound of -0.05; a flag an agent acts on should be
# rarer than that, so only clearly upset wording raises it.
NEGATIVE_AT = -0.5


@dataclass(frozen=True)
class Sentiment:
    compound: float

    @property
    def negative(self) -> bool:
        return self.compound <= NEGATIVE_AT

    @property
    def text(self) -> str:
        if self.negative:
            return f"Customer sounds upset (sentiment {self.compound:.2f})"
        tone = "positive" if self.compound >= 0.05 else "neutral" if self.compound > -0.05 else "somewhat negative"
        return f"Customer's tone: {tone} (sentiment {self.compound:.2f})"


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    # Reading the lexicon takes tens of milliseconds: once per process, not once per page.
    return SentimentIntensityAnalyzer()


def customer_sentiment(case: Case) -> Sentiment | None:
    """Return the tone of what the customer wrote (the case's subject and description), or None."""
    words = "\n".join(part for part in (case.subject, case.description) if part and part.strip())
    return sentiment_of(words)


def sentiment_of(text: str) -> Sentiment | None:
    """Return the tone of `text`, or None when there are no words to read."""
    if not text or not text.strip():
        return None
    return Sentiment(compound=_analyzer().polarity_scores(text)["compound"])
