"""The cast of tests/test_sqlite_concurrency.py, created through the services in that test's own database.

The test runs this module in a subprocess (`python -m tests.sqlite_concurrency_cast`) with
DATABASE_URL naming its file database, after `manage.py migrate`: the test suite's own database
is in memory and cannot be shared with a server in another process. Reads the agents' password
from H2H_CAST_PASSWORD and the number of agents from H2H_CAST_AGENTS; prints one JSON line with
what the clients need.
"""

from __future__ import annotations

import json
import os
from datetime import date
from decimal import Decimal

# The setting limits every agent to, so that the clients know what is refused.
PER_CASE_LIMIT = Decimal("500")
# Within the refund kind's confirmation threshold: the grants take effect without a second manager.
PERIOD_LIMIT = Decimal("2000")


def build(*, agents: int, password: str) -> dict:
    """Create an administrator, one team of agents each allowed small refunds, and a customer."""
    from authority.models import AuthorityKind, Period
    from authority.services import GrantTerms, grant_create
    from h2h_core.models import Role
    from h2h_core.people import team_add_member, team_create, user_create
    from h2h_core.services import customer_create

    admin = user_create(actor=None, username="admin", password=password, is_staff=True, is_superuser=True)
    # Complaints are routed to Retention (h2h_core.sla), so every case the agents open lands in their queue.
    team = team_create(actor=admin, name="Retention", slug="retention")
    refund = AuthorityKind.objects.get(code="refund")
    usernames = []
    for number in range(agents):
        agent = user_create(actor=admin, username=f"agent{number}", password=password, roles=[Role.AGENT])
        team_add_member(actor=admin, team=team, user=agent)
        grant_create(actor=admin, kind=refund, user=agent, reason="Small refunds on the cases they own",
                     terms=GrantTerms(per_case_limit=PER_CASE_LIMIT, period_limit=PERIOD_LIMIT,
                                      period=Period.MONTH, currency="EUR"))
        usernames.append(agent.username)
    customer = customer_create(actor=admin, name="Concurrent Customer Ltd", annual_value=Decimal("12000"),
                               currency="EUR", customer_since=date(2020, 1, 1))
    return {"agents": usernames, "customer": customer.pk, "per_case_limit": str(PER_CASE_LIMIT)}


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "h2h_core.settings")
    django.setup()
    cast = build(agents=int(os.environ["H2H_CAST_AGENTS"]), password=os.environ["H2H_CAST_PASSWORD"])
    print(json.dumps(cast))


if __name__ == "__main__":
    main()
