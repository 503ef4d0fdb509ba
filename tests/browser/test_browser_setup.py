"""Without a browser the browser tests are skipped with the reason, unless the run requires them."""

import pytest

from . import conftest


def test_without_chromium_the_browser_tests_are_skipped_with_the_reason(monkeypatch):
    # given no chromium on the PATH nor at Debian's standard location
    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)
    monkeypatch.setattr(conftest.os, "access", lambda path, mode: False)
    monkeypatch.delenv("H2H_REQUIRE_BROWSER", raising=False)
    assert conftest.chromium_executable() is None
    # then the tests are skipped, saying why
    with pytest.raises(pytest.skip.Exception, match="no chromium found"):
        conftest._unavailable("no chromium found (install Debian's chromium: apt-get install chromium)")


def test_a_run_that_requires_the_browser_fails_without_one(monkeypatch):
    monkeypatch.setenv("H2H_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="H2H_REQUIRE_BROWSER=1"):
        conftest._unavailable("no chromium found")


def test_chromium_on_the_path_is_preferred(monkeypatch):
    monkeypatch.setattr(conftest.shutil, "which", lambda name: "/opt/bin/chromium" if name == "chromium" else None)
    assert conftest.chromium_executable() == "/opt/bin/chromium"
