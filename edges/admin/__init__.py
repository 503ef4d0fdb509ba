"""The admin site: an edge like any other. Django's autodiscovery imports this module."""

from edges.admin import accounts, authority, core, workflows  # noqa: F401  (each registers its models)
