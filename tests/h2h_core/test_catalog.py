"""Reference data kept per process (h2h_core.catalog): a change made elsewhere is seen within
H2H_CATALOG_SECONDS, and at once after forgetting. "Elsewhere" is another app server: its change
reaches this process only through the database, which a queryset update stands for here."""

import pytest

from authority.catalog import kind_for_code
from authority.models import AuthorityKind
from h2h_core import catalog
from h2h_core.models import Organisation
from h2h_core.organisation import current_organisation, forget_organisation

pytestmark = pytest.mark.django_db


class Clock:
    """time.monotonic as the catalog sees it, moved by hand: no test waits."""

    def __init__(self, monkeypatch):
        self.now = 1000.0
        monkeypatch.setattr(catalog.time, "monotonic", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch, settings):
    settings.H2H_CATALOG_SECONDS = 5
    return Clock(monkeypatch)


def test_a_kind_changed_on_another_server_is_seen_here_once_the_copy_is_older_than_the_bound(clock):
    # given this process read the refund kind
    assert kind_for_code("refund").outbox_topic == "billing.refund.issue"
    # when another server changes it in the database
    AuthorityKind.objects.filter(code="refund").update(outbox_topic="billing.refund.v2")
    # then this process answers from its copy until the copy is H2H_CATALOG_SECONDS old, then sees the change
    clock.advance(4.9)
    assert kind_for_code("refund").outbox_topic == "billing.refund.issue"
    clock.advance(0.2)
    assert kind_for_code("refund").outbox_topic == "billing.refund.v2"


def test_the_copy_is_read_once_per_bound_not_once_per_request(clock, django_assert_num_queries):
    # given this process read the kinds
    kind_for_code("refund")
    # when requests ask for kinds within the bound, then no query is made
    with django_assert_num_queries(0):
        for _ in range(3):
            assert kind_for_code("refund").code == "refund"
            assert kind_for_code("goodwill_credit") is not None


def test_a_kind_added_since_the_copy_was_read_is_found_at_once(clock):
    # given this process read the kinds
    assert kind_for_code("loyalty_points") is None
    kind_for_code("refund")
    # when another server adds a kind
    AuthorityKind.objects.create(code="loyalty_points", name="Loyalty points", unit="count", outbox_topic="crm.points")
    # then it is found here at once: a code missing from the copy rereads the table
    assert kind_for_code("loyalty_points").name == "Loyalty points"


def test_the_organisation_changed_on_another_server_is_seen_within_the_bound_or_at_once_after_forgetting(clock):
    # given this process read the organisation
    before = current_organisation().time_zone
    # when another server changes its time zone
    Organisation.objects.filter(pk=1).update(time_zone="Asia/Tokyo")
    # then this process sees it once its copy is older than the bound
    assert current_organisation().time_zone == before != "Asia/Tokyo"
    clock.advance(5)
    assert current_organisation().time_zone == "Asia/Tokyo"
    # and a process that made a change itself and forgot its copies sees the next one at once
    Organisation.objects.filter(pk=1).update(time_zone="Europe/Lisbon")
    forget_organisation()
    assert current_organisation().tz.key == "Europe/Lisbon"


def test_forgetting_drops_the_kinds_too(clock):
    # given this process read the kinds, and another server renamed one
    kind_for_code("refund")
    AuthorityKind.objects.filter(code="refund").update(name="Refund (renamed)")
    # when this process forgets its copies (what tests do between them, and a process after a change)
    forget_organisation()
    # then the next read sees the change
    assert kind_for_code("refund").name == "Refund (renamed)"
