"""Request rates: per user, per client address when anonymous, stricter for asking for a token."""

import pytest

from h2h_core.models import Case
from tests.factories import CustomerFactory

from .helpers import assert_error_shape, client_for, state

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"
TOKEN = "/api/v1/auth/token/"


def anonymous(client, **meta):
    """An anonymous request that changes nothing (a token request without credentials: 400)."""
    return client.post(TOKEN, {}, content_type="application/json", **meta)


@pytest.fixture
def rates(settings):
    """Set the rates of a test: every scope off unless named."""

    def set_rates(**scopes):
        settings.H2H_API_THROTTLE_RATES = {"user": "off", "anon": "off", "token": "off", **scopes}

    return set_rates


def assert_throttled(response) -> None:
    body = assert_error_shape(response, 429, "throttled")
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 60 and body["details"] == {"retry_after_seconds": wait}


def test_the_request_over_a_users_rate_is_429_and_other_users_are_unaffected(alice, maria, rates):
    # given each user may make 3 requests a minute
    rates(user="3/min")
    as_alice, as_maria = client_for(alice), client_for(maria)
    # when alice makes a 4th
    assert [as_alice.get(ME).status_code for _ in range(3)] == [200, 200, 200]
    response = as_alice.get(ME)
    # then it is refused with Retry-After in the API's error shape, and maria is not slowed down
    assert_throttled(response)
    assert as_maria.get(ME).status_code == 200


def test_a_throttled_write_changes_nothing(alice, rates):
    # given alice has used her one request of the minute
    rates(user="1/min")
    as_alice = client_for(alice)
    as_alice.get(ME)
    before = state()
    # when she opens a valid case
    response = as_alice.post("/api/v1/cases/", {
        "customer": CustomerFactory().pk, "subject": "Charged twice for March", "category": "billing_error",
        "amount_at_stake": "89.90", "currency": "EUR"}, format="json")
    # then it is refused and nothing was opened
    assert_throttled(response)
    assert state() == before and not Case.objects.exists()


def test_anonymous_requests_count_per_client_address_and_a_forged_header_is_no_new_address(client, rates):
    # given anonymous clients may make 2 requests a minute, and no proxy is trusted
    rates(anon="2/min")
    for forged in ("198.51.100.1", "198.51.100.2"):
        assert anonymous(client, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=forged).status_code == 400
    # when the same address comes a third time claiming yet another address
    response = anonymous(client, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.3")
    # then it is the same client, refused; another address is not
    assert_throttled(response)
    assert anonymous(client, REMOTE_ADDR="203.0.113.8").status_code == 400


def test_behind_a_proxy_the_address_the_proxy_saw_is_counted(client, rates, settings):
    # given one trusted proxy (all requests come from it) and 1 anonymous request a minute
    settings.H2H_TRUSTED_PROXY_COUNT = 1
    rates(anon="1/min")
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    assert anonymous(client, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy).status_code == 400
    # when that client comes again with a forged entry in front, and another client comes through the same proxy
    again = anonymous(client, HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.7", **proxy)
    other = anonymous(client, HTTP_X_FORWARDED_FOR="203.0.113.8", **proxy)
    # then the first is refused and the other is not
    assert_throttled(again)
    assert other.status_code == 400


def test_asking_for_tokens_has_its_own_stricter_rate_per_address(alice, client, rates):
    # given 2 token requests a minute per address, and generous rates otherwise
    rates(token="2/min", anon="100/min", user="100/min")
    ask = {"username": "alice", "password": "h2h-demo"}
    assert [client.post(TOKEN, ask, REMOTE_ADDR="203.0.113.7").status_code for _ in range(2)] == [200, 200]
    # when the same address asks a third time
    response = client.post(TOKEN, ask, REMOTE_ADDR="203.0.113.7")
    # then it is refused without issuing a token, while another address still gets one and the API stays open
    assert_throttled(response)
    assert alice.api_tokens.count() == 2
    other = client.post(TOKEN, ask, REMOTE_ADDR="203.0.113.8")
    assert other.status_code == 200
    key = other.json()["token"]
    assert client.get(ME, HTTP_AUTHORIZATION=f"Token {key}", REMOTE_ADDR="203.0.113.7").status_code == 200

