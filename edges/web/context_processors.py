"""Template context shared by every page."""

from authority import policy
from workflows.inbox import waiting_counts

WAITING = ("Waiting for me", "cases:waiting")
APPROVALS = "authority:approvals"


def navigation(request):
    """The sections this user may open; "Waiting for me" and Approvals carry their counts.

    `nav` is (label, url name, count or None) triples. The counts cost two or three COUNT queries,
    asked only of signed-in people who work cases or approve requests.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    items = policy.navigation_for(user)
    names = {url_name for _, url_name in items}
    if not names & {"cases:list", APPROVALS}:
        return {"nav": [(label, url_name, None) for label, url_name in items]}
    counts = waiting_counts(user, with_approvals=APPROVALS in names)
    at = next((i + 1 for i, (_, url_name) in enumerate(items) if url_name == "cases:list"), 0)
    items = [*items[:at], WAITING, *items[at:]]
    numbers = {WAITING[1]: counts.total, APPROVALS: counts.approvals}
    return {"nav": [(label, url_name, numbers.get(url_name)) for label, url_name in items]}
