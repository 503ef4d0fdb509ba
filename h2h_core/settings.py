"""Settings for H2H, read from the environment.

The embedded default is SQLite inside the project; production sets DATABASE_URL, SECRET_KEY,
ALLOWED_HOSTS and DEBUG=0.
"""

import os
import re
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
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "djmoney",
    "axes",
    "viewflow",
    "viewflow.workflow",
    "django_tasks_db",
    "h2h_core",
    "authority",
    "workflows",
    "edges",
    "edges.worker",
]
# The demo seed is a development tool: production settings (DEBUG=0) do not even install it.
H2H_DEMO = env_bool("H2H_DEMO", DEBUG)
if H2H_DEMO:
    INSTALLED_APPS.append("edges.demo")

DJANGO_6 = django.VERSION >= (6, 0)
if not DJANGO_6:
    # Django 6 has the task interface built in (django.tasks); on 5.2 the django-tasks package is it.
    INSTALLED_APPS.insert(INSTALLED_APPS.index("django_tasks_db"), "django_tasks")

# The Browser* entries wrap Django's (and the form tokens') middleware so that an API request
# carrying `Authorization: Token …` passes them by: it has no session, cookie or form
# (edges.web.middleware.browser_only; docs/design.md, "Token API requests skip the browser's middleware").
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "edges.web.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Not wrapped: API views are CSRF-exempt already (it costs a token request nothing), and check --deploy
    # looks for it by name.
    "django.middleware.csrf.CsrfViewMiddleware",
    "edges.web.middleware.BrowserAuthenticationMiddleware",
    "edges.web.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "edges.web.middleware.RequestContextMiddleware",
    "edges.web.middleware.RejectNulCharactersMiddleware",
    "edges.web.contention.ContentionMiddleware",
    "edges.web.middleware.BrowserExecuteOnceMiddleware",
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
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and os.environ.get(
        "H2H_PREPARED_STATEMENTS", "1") != "0":
    # PostgreSQL plans a statement every time it is sent as text, and for the decision path's reads
    # planning costs up to ten times running them (docs/performance.md, "Prepared statements").
    # Sent with server-side parameters, psycopg prepares a statement on a connection after its
    # fifth run there, and PostgreSQL reuses the plan. H2H_PREPARED_STATEMENTS=0 turns it off, for a
    # connection pooler in transaction mode that cannot keep prepared statements (PgBouncer before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 5})
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves several threads and processes at once: writers take turns instead of
    # failing (docs/design.md, "SQLite as the embedded default"). IMMEDIATE: a transaction takes the write
    # lock at BEGIN, waiting up to `timeout` seconds for it; under SQLite's DEFERRED default a transaction
    # that read first fails at its first write with "database is locked", without waiting, whenever
    # another one writes. WAL: readers and the writer do not block each other; with WAL, synchronous=NORMAL
    # keeps the database consistent (a power cut can lose the last commits, never half of one).
    # Persistent connections buy nothing on SQLite.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    })

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
    # Files the product writes (large evidence exports) live outside STATIC_ROOT and are served by no
    # URL: they leave only through a view that checks who asks (edges.auditor.export_views).
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": VAR_DIR / "files"},
    },
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
# The public key checkpoints are verified with (PEM text, or the path of a PEM file). Web servers need
# only this; when unset, it is derived from the signing key file, if this machine has it (development).
H2H_AUDIT_PUBLIC_KEY = os.environ.get("H2H_AUDIT_PUBLIC_KEY", "")
# A chain verification still "running" this long after it started is taken as abandoned (its worker
# stopped), so a new one can be requested.
H2H_AUDIT_VERIFICATION_STALE_HOURS = float(os.environ.get("H2H_AUDIT_VERIFICATION_STALE_HOURS", "6"))
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
# How many reverse proxies in front of the application append to X-Forwarded-For: the client address
# is the one the outermost of them saw (h2h_core.request_context.client_ip). 0: REMOTE_ADDR.
# H2H_TRUST_X_FORWARDED_FOR=1 is the deprecated way of saying 1.
H2H_TRUSTED_PROXY_COUNT = int(os.environ.get(
    "H2H_TRUSTED_PROXY_COUNT", "1" if env_bool("H2H_TRUST_X_FORWARDED_FOR", False) else "0"))
if H2H_TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("H2H_TRUSTED_PROXY_COUNT must be 0 or more.")
# API tokens open the API for this many days after they are issued.
H2H_API_TOKEN_DAYS = float(os.environ.get("H2H_API_TOKEN_DAYS", "30"))
if not H2H_API_TOKEN_DAYS > 0:
    raise ImproperlyConfigured("H2H_API_TOKEN_DAYS must be more than 0.")

DEFAULT_CURRENCY = H2H_BASE_CURRENCY
CURRENCIES = tuple(env_list("H2H_CURRENCIES", "EUR,USD,GBP,CHF,SEK,JPY"))

# Mail: the backend and the SMTP server's settings come from the environment under Django's names
# (EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS,
# EMAIL_USE_SSL, EMAIL_TIMEOUT). Django 6.1 configures mail with MAILERS and deprecates the EMAIL_*
# settings (gone in 7.0); 5.2 has only those.
_MAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
_SMTP = {
    "host": os.environ.get("EMAIL_HOST", "localhost"),
    "port": int(os.environ["EMAIL_PORT"]) if os.environ.get("EMAIL_PORT") else None,  # None: by TLS/SSL
    "username": os.environ.get("EMAIL_HOST_USER", ""),
    "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
    "use_tls": env_bool("EMAIL_USE_TLS", False),
    "use_ssl": env_bool("EMAIL_USE_SSL", False),
    "timeout": float(os.environ["EMAIL_TIMEOUT"]) if os.environ.get("EMAIL_TIMEOUT") else 30.0,
}
if _SMTP["use_tls"] and _SMTP["use_ssl"]:
    raise ImproperlyConfigured("Set at most one of EMAIL_USE_TLS and EMAIL_USE_SSL.")
if django.VERSION >= (6, 1):
    # A MAILERS backend refuses options it does not take: only SMTP takes the server's.
    MAILERS = {"default": {"BACKEND": _MAIL_BACKEND,
                           "OPTIONS": _SMTP if _MAIL_BACKEND.endswith(".smtp.EmailBackend") else {}}}
else:
    EMAIL_BACKEND = _MAIL_BACKEND
    EMAIL_HOST, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _SMTP["host"], _SMTP["username"], _SMTP["password"]
    EMAIL_USE_TLS, EMAIL_USE_SSL, EMAIL_TIMEOUT = _SMTP["use_tls"], _SMTP["use_ssl"], _SMTP["timeout"]
    EMAIL_PORT = _SMTP["port"] or (465 if EMAIL_USE_SSL else 587 if EMAIL_USE_TLS else 25)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "h2h@localhost")
# Mail is sent by jobs (h2h_core/mail.py): failed sends are retried after 30 s, doubling, up to this
# many attempts; then the mail is marked failed (admin: Outbound mails).
H2H_MAIL_MAX_ATTEMPTS = int(os.environ.get("H2H_MAIL_MAX_ATTEMPTS", "5"))

# --- Webhooks (authority/webhooks.py) --------------------------------------------------------
# Attempts per delivery (30 s, doubling, at most hourly) before it is dead-lettered; consecutive
# failed attempts that disable an endpoint; attempts in flight at once per endpoint.
H2H_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("H2H_WEBHOOK_MAX_ATTEMPTS", "8"))
H2H_WEBHOOK_DISABLE_AFTER = int(os.environ.get("H2H_WEBHOOK_DISABLE_AFTER", "20"))
H2H_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = int(os.environ.get("H2H_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", "4"))
for _name in ("H2H_MAIL_MAX_ATTEMPTS", "H2H_WEBHOOK_MAX_ATTEMPTS", "H2H_WEBHOOK_DISABLE_AFTER",
              "H2H_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be 1 or more.")

# --- Jobs ------------------------------------------------------------------------------------
# Timers, webhook deliveries, mail, audit verification and exports run as jobs through Django's
# task interface. The embedded default keeps them in the application database, so a job enqueued
# inside a transaction exists exactly when that transaction commits. `manage.py run_worker` runs
# them (as many workers on as many machines as wanted) and enqueues the periodic jobs.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "webhooks", "mail", "audit"],
    }
}
# How often the workflow timers (service levels, approval windows, follow-up) are swept.
H2H_TIMER_SWEEP_SECONDS = float(os.environ.get("H2H_TIMER_SWEEP_SECONDS", "20"))
# Finished jobs and periodic runs are kept this many days; API idempotency records and web form
# tokens this many (clients retry within hours).
H2H_JOB_RESULTS_DAYS = float(os.environ.get("H2H_JOB_RESULTS_DAYS", "7"))
H2H_SHORT_RETENTION_DAYS = float(os.environ.get("H2H_SHORT_RETENTION_DAYS", "7"))
# An export of more rows than this is built by a job into a file (listed on the auditor's Exports
# page) instead of streaming from the request; the file is deleted this many days after it is ready.
H2H_EXPORT_INLINE_ROWS = int(os.environ.get("H2H_EXPORT_INLINE_ROWS", "5000"))
H2H_EXPORT_KEEP_DAYS = float(os.environ.get("H2H_EXPORT_KEEP_DAYS", "7"))

# Prometheus metrics at /metrics/ (edges.web.metrics): off unless enabled; a bearer token if set.
H2H_METRICS_ENABLED = env_bool("H2H_METRICS_ENABLED", False)
H2H_METRICS_TOKEN = os.environ.get("H2H_METRICS_TOKEN", "")

# --- Security ------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# A load balancer probes the health endpoint over plain HTTP (edges.web.health).
SECURE_REDIRECT_EXEMPT = [r"^healthz/$", r"^metrics/$"]
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
# The address axes locks out is the one the audit log records (behind H2H_TRUSTED_PROXY_COUNT proxies).
AXES_CLIENT_IP_CALLABLE = "h2h_core.request_context.client_ip"

# --- Libraries -----------------------------------------------------------------------------
GUARDIAN_RAISE_403 = True
ANONYMOUS_USER_NAME = None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "edges.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["edges.api.throttling.UserThrottle", "edges.api.throttling.AnonThrottle"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's JSON parser with a nesting limit: a deeply nested body is a 400, not a RecursionError.
    "DEFAULT_PARSER_CLASSES": ["edges.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "edges.api.errors.api_exception_handler",
}
# API request rates ("<number>/<s|min|hour|day>", or "off"): per user, per client address when
# anonymous, and for asking for a token (per address). The counters live in Django's cache: the
# default in-process cache counts per app server process, so with several processes or servers set
# CACHE_URL to a shared cache (redis://…) for one count per user.
_RATE = r"^(off|[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day))$"
H2H_API_THROTTLE_RATES = {
    "user": os.environ.get("H2H_API_THROTTLE_USER", "1200/min"),
    "anon": os.environ.get("H2H_API_THROTTLE_ANON", "600/min"),
    "token": os.environ.get("H2H_API_THROTTLE_TOKEN", "60/min"),
}
for _scope, _rate in H2H_API_THROTTLE_RATES.items():
    if not re.match(_RATE, _rate):
        raise ImproperlyConfigured(f"H2H_API_THROTTLE_{_scope.upper()}={_rate!r}: write e.g. 1200/min, or off.")
if os.environ.get("CACHE_URL"):
    if not os.environ["CACHE_URL"].startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("CACHE_URL must be a Redis address (redis://, rediss:// or unix://).")
    # Needs the `redis` package (pip install ".[redis]").
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": os.environ["CACHE_URL"]}}
# The organisation and the authority kinds are kept in each process this many seconds (h2h_core.catalog):
# the bound on how late an app server sees a change made elsewhere. 0 rereads them at every use.
H2H_CATALOG_SECONDS = float(os.environ.get("H2H_CATALOG_SECONDS", "5"))

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

# Every line names its request (or job): the id the response carries in X-Request-ID and the audit
# log records. LOG_FORMAT=json writes one JSON object a line for a log collector (h2h_core/logging.py).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be text or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "h2h_core.logging.RequestIdFilter"}},
    "formatters": {
        "text": {"()": "h2h_core.logging.TextFormatter"},
        "json": {"()": "h2h_core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["request_id"], "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
