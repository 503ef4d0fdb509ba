"""The product's settings plus the comparison endpoints, for bench/api.py only (DJANGO_SETTINGS_MODULE=bench.settings).

Everything else, production switches included (DEBUG, SECRET_KEY, DATABASE_URL...), is read from the
environment exactly as h2h_core.settings reads it.
"""

from h2h_core.settings import *  # noqa: F403
from h2h_core.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.comparison"]
ROOT_URLCONF = "bench.urls"
