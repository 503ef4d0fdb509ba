"""Every log line names the request (or job) it belongs to, as text or as one JSON object a line."""

import json
import logging
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest

from h2h_core.logging import JsonFormatter, RequestIdFilter, TextFormatter
from h2h_core.request_context import log_context

GENERATED = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def console():
    """Return what the configured console handler (settings.LOGGING) writes, as it writes it."""
    handlers = [handler for handler in logging.getLogger().handlers
                if any(isinstance(each, RequestIdFilter) for each in handler.filters)]
    assert len(handlers) == 1, "settings.LOGGING puts the request id filter on the console handler"
    stream = StringIO()
    previous = handlers[0].setStream(stream)
    yield stream
    handlers[0].setStream(previous)


def record(message="something happened", exc_info=None) -> logging.LogRecord:
    return logging.getLogger("h2h.test").makeRecord("h2h.test", logging.WARNING, __file__, 1, message, (), exc_info)


@pytest.mark.django_db
def test_a_line_logged_during_a_request_carries_its_request_id(client, console):
    # given a request with a sane id of its own, to a page that does not exist (Django logs it)
    # when it is served
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="edge-7f3a")
    # then the response and the line logged while serving it carry the same id
    assert response.status_code == 404 and response["X-Request-ID"] == "edge-7f3a"
    line = next(line for line in console.getvalue().splitlines() if "Not Found: /no-such-page/" in line)
    assert "[edge-7f3a]" in line


@pytest.mark.django_db
def test_a_line_logged_after_the_middleware_still_names_the_request(client, console):
    # given a request refused by the API's authentication (Django logs the 401 after the middleware ran)
    response = client.get("/api/v1/me/", HTTP_X_REQUEST_ID="edge-401")
    # then that line names the request too
    assert response.status_code in (401, 403)
    line = next(line for line in console.getvalue().splitlines() if "/api/v1/me/" in line)
    assert "[edge-401]" in line


@pytest.mark.django_db
@pytest.mark.parametrize("bogus", ["edge-1\n", "id with spaces", "<script>", "x" * 65, "caf\u00e9", ""],
                         ids=["trailing newline", "spaces", "markup", "too long", "non-ascii", "empty"])
def test_a_bogus_incoming_request_id_is_replaced(client, bogus):
    # when a request arrives with an id that is not a sane token
    response = client.get("/healthz/", HTTP_X_REQUEST_ID=bogus)
    # then the response carries a generated one instead
    assert GENERATED.match(response["X-Request-ID"])


def test_outside_a_request_the_id_is_a_dash_and_a_job_can_set_its_own():
    # given a record logged outside any request, and one inside a job's context
    outside = TextFormatter().format(record())
    with log_context(request_id="job-42") as job_id:
        inside = TextFormatter().format(record())
    # then the first shows "-" and the second the job's id
    assert "[-] something happened" in outside
    assert job_id == "job-42" and "[job-42] something happened" in inside


def test_a_job_context_refuses_a_bogus_id():
    # when a job asks for an id that is not a sane token, then it gets a fresh one
    with log_context(request_id="job\n42") as job_id:
        assert GENERATED.match(job_id)


def test_the_json_formatter_writes_one_parseable_object_a_line():
    # given a record with a two-line message and an exception, logged inside a job's context
    try:
        raise ValueError("bad input")
    except ValueError:
        failure = sys.exc_info()
    with log_context(request_id="job-43"):
        line = JsonFormatter().format(record("first line\nsecond line", exc_info=failure))
    # then it is one line of JSON with every field
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "h2h.test"
    assert entry["message"] == "first line\nsecond line" and entry["request_id"] == "job-43"
    assert entry["time"].endswith("Z") and "ValueError: bad input" in entry["exc_info"]


def test_log_format_json_selects_the_json_formatter():
    # given LOG_FORMAT=json in the environment of a fresh process
    env = {**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "h2h_core.settings"}
    code = "import django, logging; django.setup(); logging.getLogger('h2h.probe').warning('probe %s', 1)"
    # when it logs
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parent.parent, check=False)
    # then the line is JSON with the id placeholder outside a request
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stderr.strip().splitlines()[-1])
    assert (entry["logger"], entry["message"], entry["request_id"]) == ("h2h.probe", "probe 1", "-")
