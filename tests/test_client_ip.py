"""The client address behind proxies: read from the right of X-Forwarded-For, one answer for the audit log and axes."""

import pytest
from axes.models import AccessAttempt
from django.test import RequestFactory
from django.urls import reverse

from h2h_core.models import AuditEvent
from h2h_core.request_context import client_ip

PASSWORD = "h2h-demo"  # the factories' password
WRONG = "not-her-password-123"
PROXY = "10.0.0.2"


def address(*, remote="10.0.0.2", forwarded=None) -> str | None:
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(RequestFactory().get("/", **meta))


@pytest.mark.parametrize(("hops", "forwarded", "expected"), [
    # no proxy trusted: the header is the client's own words
    (0, "198.51.100.1", "10.0.0.2"),
    # one proxy: the entry it appended, whatever the client put in front
    (1, "203.0.113.7", "203.0.113.7"),
    (1, "198.51.100.1, 203.0.113.7", "203.0.113.7"),
    (1, "198.51.100.1,198.51.100.2,  203.0.113.7 ", "203.0.113.7"),
    # two proxies: the address the outer one saw
    (2, "198.51.100.1, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
    # IPv6, normalised as the audit log stores it
    (1, "2001:0DB8:0000::0001", "2001:db8::1"),
], ids=["no-proxy", "one-proxy", "one-proxy-spoofed", "one-proxy-spaces", "two-proxies", "ipv6"])
def test_the_client_address_is_counted_from_the_right(settings, hops, forwarded, expected):
    settings.H2H_TRUSTED_PROXY_COUNT = hops
    assert address(forwarded=forwarded) == expected


@pytest.mark.parametrize(("hops", "forwarded"), [
    (1, "198.51.100.1, not-an-address"),
    (1, "198.51.100.1, 203.0.113.7:4711"),
    (1, ""),
    (2, "203.0.113.7"),  # fewer entries than proxies: the chain did not come through them all
    (1, "198.51.100.1, "),
], ids=["garbage", "with-port", "empty", "too-short", "blank-entry"])
def test_a_malformed_or_short_chain_falls_back_to_the_connecting_address(settings, hops, forwarded):
    settings.H2H_TRUSTED_PROXY_COUNT = hops
    assert address(forwarded=forwarded) == PROXY


def test_no_usable_address_at_all_is_none(settings):
    settings.H2H_TRUSTED_PROXY_COUNT = 1
    assert address(remote="", forwarded="nonsense") is None


@pytest.mark.django_db
def test_the_audit_log_records_the_address_the_proxy_saw_not_the_forged_one(client, alice, settings):
    # given one trusted proxy
    settings.H2H_TRUSTED_PROXY_COUNT = 1
    # when a client at 203.0.113.7 logs in, claiming in the header to be 198.51.100.1
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD},
                REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7")
    # then the login is recorded from 203.0.113.7
    assert AuditEvent.objects.get(action="auth.logged_in").ip == "203.0.113.7"


@pytest.mark.django_db
def test_axes_locks_out_the_real_address_however_the_forged_entries_change(client, alice, settings):
    # given one trusted proxy and a lockout after three failures
    settings.H2H_TRUSTED_PROXY_COUNT = 1
    settings.AXES_FAILURE_LIMIT = 3

    def log_in(password, forged, real="203.0.113.7"):
        return client.post(reverse("login"), {"username": "alice", "password": password},
                           REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{forged}, {real}")

    # when a client at 203.0.113.7 fails three times, each time forging another address in front
    for n in range(3):
        log_in(WRONG, forged=f"198.51.100.{n}")
    # then its address is locked out for alice, even with the right password and yet another forged entry
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["203.0.113.7"]
    assert log_in(PASSWORD, forged="198.51.100.99").status_code == 429
    assert not AuditEvent.objects.filter(action="auth.logged_in").exists()
    # and alice, from her own address behind the same proxy, still gets in
    assert log_in(PASSWORD, forged="198.51.100.99", real="203.0.113.50").status_code == 302
    assert AuditEvent.objects.get(action="auth.logged_in").ip == "203.0.113.50"
