"""Template context shared by every page."""

from authority import policy


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav": policy.navigation_for(user)}
