"""Assist, offline: similar resolved cases, the customer's tone, and a next-best action.

Everything is computed here from the project's own data and a lexicon that ships inside a
package: no external service, nothing downloaded at run time.
"""

from .next_action import NextAction, next_best_action
from .sentiment import Sentiment, customer_sentiment
from .similar import SimilarCase, similar_resolved_cases

__all__ = [
    "NextAction",
    "Sentiment",
    "SimilarCase",
    "customer_sentiment",
    "next_best_action",
    "similar_resolved_cases",
]
