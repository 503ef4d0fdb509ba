"""Where `collectstatic` and the development server look for apps' static files.

Viewflow ships its whole Material frontend as static files (about 50 MB), including a copy of the
roboto-fontface npm package whose `css/roboto/roboto-fontface.css` points at `./Roboto-*.woff2`
next to itself, where no font is. The manifest storage used with DEBUG=0 rewrites every `url()`
in every CSS file it collects, so that dangling reference made `collectstatic` fail, no manifest
was written, and every page that uses `{% static %}` answered 500.

The project does not mount viewflow's frontend (docs/design.md, "One look, offline"): none of
those files is ever linked. So they are not collected at all, rather than collected and exempted
from the manifest's checks (`manifest_strict = False` would also hide a broken reference of our
own). Viewflow's Python code and templates are untouched; only its `static/` directory is skipped.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib.staticfiles import finders

# Apps whose static files the project never serves.
UNSERVED_APPS = frozenset({"viewflow"})


class AppDirectoriesFinder(finders.AppDirectoriesFinder):
    """Django's finder of `<app>/static/`, without the apps in UNSERVED_APPS."""

    def __init__(self, app_names=None, *args, **kwargs):
        if app_names is None:
            app_names = [config.name for config in apps.get_app_configs()]
        app_names = [name for name in app_names if name not in UNSERVED_APPS]
        super().__init__(app_names, *args, **kwargs)
