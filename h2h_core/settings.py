"""Settings for H2H, read from the environment.

The embedded default is SQLite inside the project; production sets DATABASE_URL, SECRET_KEY,
ALLOWED_HOSTS and DEBUG=0.
"""

import os
from pathlib import Path

import dj_database_url
import django
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("H2H_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-h2h-never-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    # django.contrib.admin, with its own-password page writing through the audited service
    "edges.web.admin_site.H2HAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "djmoney",
    "axes",
    "viewflow",
    "viewflow.workflow",
    "h2h_core",
    "authority",
    "workflows",
    "edges",
]
# The demo seed is a development tool: production settings (DEBUG=0) do not even install it.
H2H_DEMO = env_bool("H2H_DEMO", DEBUG)
if H2H_DEMO:
    INSTALLED_APPS.append("edges.demo")

DJANGO_6 = django.VERSION >= (6, 0)

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "edges.web.middleware.RequestContextMiddleware",
    "edges.web.middleware.RejectNulCharactersMiddleware",
    "edges.web.contention.ContentionMiddleware",
    "edges.web.once.ExecuteOnceMiddleware",
    # Django 6 ships a CSP middleware; on 5.2 django-csp provides the same policy.
    "django.middleware.csp.ContentSecurityPolicyMiddleware" if DJANGO_6 else "csp.middleware.CSPMiddleware",
    # Axes must be last so it sees the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "edges.urls"
WSGI_APPLICATION = "h2h_core.wsgi.application"
ASGI_APPLICATION = "h2h_core.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "edges.web.context_processors.navigation",
            ],
        },
    },
]

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'h2h.sqlite3'}"),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if os.environ.get("H2H_TEST_DATABASE_NAME"):
    # Lets several test runs share one PostgreSQL server without dropping each other's database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["H2H_TEST_DATABASE_NAME"]}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Persistent connections buy nothing on SQLite; a busy timeout avoids spurious "locked" errors.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# h2h_core is an app, so its static/ is found by the app finder (no STATICFILES_DIRS: each file once).
# Viewflow's own frontend is not mounted, so its static files are not collected: one of its CSS
# files refers to a font that is not there, which the manifest storage refuses (edges.web.static_finders).
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "edges.web.static_finders.AppDirectoriesFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- The organisation -------------------------------------------------------------------------
H2H_ORGANISATION_NAME = os.environ.get("H2H_ORGANISATION_NAME", "Northwind Support")
H2H_TIME_ZONE = os.environ.get("H2H_TIME_ZONE", "Europe/Berlin")
H2H_BASE_CURRENCY = os.environ.get("H2H_BASE_CURRENCY", "EUR")
# Ed25519 private key that signs audit checkpoints (PEM, created by `manage.py audit_keygen`).
H2H_AUDIT_SIGNING_KEY = Path(os.environ.get("H2H_AUDIT_SIGNING_KEY", VAR_DIR / "audit_signing_key.pem"))
# One-off grants created by an approval expire after this many hours.
H2H_ONE_OFF_GRANT_HOURS = int(os.environ.get("H2H_ONE_OFF_GRANT_HOURS", "72"))
# Members of this group approve when no manager of the agent's team has the authority to.
H2H_FALLBACK_APPROVER_GROUP = os.environ.get("H2H_FALLBACK_APPROVER_GROUP", "Fallback approvers")
# Workflow timing: follow-up before a resolved case closes, the team managers' window on a request.
H2H_FOLLOW_UP_DAYS = float(os.environ.get("H2H_FOLLOW_UP_DAYS", "7"))
H2H_APPROVAL_TEAM_HOURS = float(os.environ.get("H2H_APPROVAL_TEAM_HOURS", "8"))
H2H_RATING_LINK_SLACK_DAYS = float(os.environ.get("H2H_RATING_LINK_SLACK_DAYS", "30"))
# Public address of the site, the prefix of links sent by mail (the customer's rating link).
H2H_PUBLIC_URL = os.environ.get("H2H_PUBLIC_URL", "http://127.0.0.1:8000")
# Set when a trusted reverse proxy puts the client address in X-Forwarded-For.
H2H_TRUST_X_FORWARDED_FOR = env_bool("H2H_TRUST_X_FORWARDED_FOR", False)

DEFAULT_CURRENCY = H2H_BASE_CURRENCY
CURRENCIES = tuple(env_list("H2H_CURRENCIES", "EUR,USD,GBP,CHF,SEK,JPY"))

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "h2h@localhost")

# --- Security ------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# A load balancer probes the health endpoint over plain HTTP (edges.web.health).
SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

_CSP_SELF = "'self'"
if DJANGO_6:
    from django.utils.csp import CSP  # noqa: E402

    SECURE_CSP = {
        "default-src": [CSP.SELF],
        "img-src": [CSP.SELF, "data:"],
        "style-src": [CSP.SELF],
        "script-src": [CSP.SELF],
        "frame-ancestors": [CSP.NONE],
        "form-action": [CSP.SELF],
        "base-uri": [CSP.SELF],
    }
else:
    CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {
            "default-src": [_CSP_SELF],
            "img-src": [_CSP_SELF, "data:"],
            "style-src": [_CSP_SELF],
            "script-src": [_CSP_SELF],
            "frame-ancestors": ["'none'"],
            "form-action": [_CSP_SELF],
            "base-uri": [_CSP_SELF],
        }
    }

# Brute-force protection: five failures lock the username from that address for 15 minutes.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# --- Libraries -----------------------------------------------------------------------------
GUARDIAN_RAISE_403 = True
ANONYMOUS_USER_NAME = None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "edges.api.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "H2H API",
    "DESCRIPTION": "Cases, authority checks, decisions, one-hop requests, grants and the audit log.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
