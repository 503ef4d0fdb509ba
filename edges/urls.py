"""The project's URL map: the composition root that mounts each app's pages."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from edges.web.health import healthz
from edges.web.metrics import metrics

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="authority:mine", permanent=False), name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="h2h_core/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("cases/", include(("edges.agent.urls", "cases"))),
    path("customers/", include(("edges.agent.customer_urls", "customers"))),
    path("authority/", include(("edges.manager.urls", "authority"))),
    path("audit/", include(("edges.auditor.urls", "audit"))),
    path("api/", include("edges.api.urls")),
    path("admin/", admin.site.urls),
    path("healthz/", healthz, name="healthz"),
    path("metrics/", metrics, name="metrics"),
]

# The product's own error pages (the API keeps its JSON shape): see edges.web.errors.
handler400 = "edges.web.errors.bad_request"
handler403 = "edges.web.errors.permission_denied"
handler404 = "edges.web.errors.page_not_found"
handler500 = "edges.web.errors.server_error"
