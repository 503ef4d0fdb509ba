"""Start Django in a spawned helper process (multiprocessing's "spawn": a fresh interpreter).

It imports nothing of the project at module level: unpickling a helper's initializer imports its
module before Django is set up, and the project's models cannot be imported before then.
"""

from __future__ import annotations


def django_setup(database: dict) -> None:
    """Set Django up, connected to the parent's database (its name can differ from the settings': tests)."""
    import django
    from django.conf import settings

    django.setup()
    settings.DATABASES["default"].update({name: value for name, value in database.items() if value is not None})
