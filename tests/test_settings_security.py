"""Production settings pass Django's deploy checks; logins are protected against brute force."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent


def test_production_settings_pass_check_deploy(tmp_path):
    # given the usual production environment
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "h2h.example.com",
           "H2H_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    # when Django checks the deployment at warning level
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    # then nothing is flagged
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {**os.environ, "DEBUG": "0", "ALLOWED_HOSTS": "h2h.example.com", "H2H_VAR_DIR": str(tmp_path)}
    env.pop("SECRET_KEY", None)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_five_wrong_passwords_lock_the_login(client, settings):
    # given brute-force protection is on and alice exists
    settings.AXES_ENABLED = True
    UserFactory(username="alice")
    login = reverse("login")
    # when someone tries five wrong passwords
    for _ in range(5):
        client.post(login, {"username": "alice", "password": "wrong"})
    # then even the right password is refused for now
    response = client.post(login, {"username": "alice", "password": "h2h-demo"})
    assert response.status_code in (403, 429)
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_right_password_logs_in(client):
    UserFactory(username="alice")
    response = client.post(reverse("login"), {"username": "alice", "password": "h2h-demo"})
    assert response.status_code == 302 and client.session["_auth_user_id"]


def test_pages_carry_a_content_security_policy(client):
    response = client.get(reverse("login"))
    assert "default-src 'self'" in response.get("Content-Security-Policy", "")


@pytest.mark.django_db
def test_nul_characters_in_a_query_or_form_are_a_400_not_a_500(client):
    # given a logged-in agent
    from tests.factories import UserFactory as Users

    client.force_login(Users(username="nul-tester"))
    # when a query string or a form carries a NUL character
    query = client.get("/cases/1/check/?kind=%00refund&amount=1")
    form = client.post(reverse("login"), "username=a%00b&password=x",
                       content_type="application/x-www-form-urlencoded")
    api = client.get("/api/v1/cases/?status=%00")
    # then each is refused plainly
    assert query.status_code == 400 and b"NUL character" in query.content
    assert form.status_code == 400
    assert api.status_code == 400 and api.json()["code"] == "invalid"


def test_production_static_files_collect_into_a_manifest(tmp_path):
    # given the production settings (manifest storage) and an empty STATIC_ROOT
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "h2h.example.com",
           "H2H_VAR_DIR": str(tmp_path), "STATIC_ROOT": str(tmp_path / "static")}
    env.pop("DATABASE_URL", None)
    # when the static files are collected
    result = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    # then every reference resolved, and viewflow's unused frontend was left out
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = (tmp_path / "static" / "staticfiles.json").read_text()
    assert '"h2h/app.css"' in manifest and '"admin/css/base.css"' in manifest
    assert not (tmp_path / "static" / "viewflow").exists()
