"""URLs of the API, mounted at /api/ by the project: /api/v1/…, the schema and its Swagger UI."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from edges.api import views
from edges.api.errors import not_found_json
from edges.api.schema import SwaggerUI

router = SimpleRouter()
router.register("cases", views.CaseViewSet, basename="case")
router.register("decisions", views.DecisionViewSet, basename="decision")
router.register("authority-requests", views.AuthorityRequestViewSet, basename="authority-request")
router.register("grants", views.GrantViewSet, basename="grant")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")

app_name = "api"

v1 = [
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("me/", views.MeView.as_view(), name="me"),
    path("authority-kinds/", views.KindList.as_view(), name="authority-kinds"),
    path("authority-check/", views.AuthorityCheck.as_view(), name="authority-check"),
    path("audit-verify/", views.AuditVerify.as_view(), name="audit-verify"),
    *router.urls,
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SwaggerUI.as_view(url_name="api:schema"), name="docs"),
    # Anything else under /api/ is a 404 in the API's error shape, not an HTML page.
    re_path(r"^[\s\S]*$", not_found_json),  # [\s\S]: a path may contain a newline
]
