"""WSGI entry point (gunicorn h2h_core.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "h2h_core.settings")
application = get_wsgi_application()
