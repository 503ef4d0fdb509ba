"""Comparison endpoints for bench/api.py: a decision next to a bare insert. Never installed by the product."""
