"""The mail server's settings come from the environment, under whichever setting this Django reads."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The default mailer as the mail job gets it: MAILERS on Django 6.1 and later, EMAIL_* before.
SHOW_MAILER = """
import django
django.setup()
from django.core import mail
backend = mail.mailers["default"] if hasattr(mail, "mailers") else mail.get_connection()
print(type(backend).__module__, backend.host, backend.port, backend.username, backend.password,
      backend.use_tls, backend.use_ssl, backend.timeout)
"""


def run_settings(tmp_path, **mail_env):
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "h2h.example.com",
           "H2H_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "h2h_core.settings", **mail_env}
    env.pop("DATABASE_URL", None)
    # -W error: a deprecated mail setting is a failure, not a warning for later
    return subprocess.run([sys.executable, "-W", "error", "-c", SHOW_MAILER], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_production_sends_through_the_smtp_server_the_environment_names(tmp_path):
    # given a production environment naming an SMTP server with TLS and credentials
    result = run_settings(tmp_path, EMAIL_HOST="smtp.example.com", EMAIL_PORT="2525", EMAIL_HOST_USER="h2h",
                          EMAIL_HOST_PASSWORD="s3cret", EMAIL_USE_TLS="1", EMAIL_TIMEOUT="12")
    # then the default mailer is SMTP to that server, with those settings, and nothing is deprecated
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.core.mail.backends.smtp", "smtp.example.com", "2525", "h2h", "s3cret",
                                     "True", "False", "12.0"]


def test_the_port_follows_tls_when_the_environment_names_none(tmp_path):
    result = run_settings(tmp_path, EMAIL_HOST="smtp.example.com", EMAIL_USE_SSL="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1:3] == ["smtp.example.com", "465"]


def test_tls_and_ssl_together_refuse_to_start(tmp_path):
    result = run_settings(tmp_path, EMAIL_USE_TLS="1", EMAIL_USE_SSL="1")
    assert result.returncode != 0 and "Set at most one of EMAIL_USE_TLS and EMAIL_USE_SSL" in result.stderr
