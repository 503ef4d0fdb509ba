"""URLs of the API, mounted at /api/ by the project: /api/v1/…, the schema and its Swagger UI."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from edges.api.errors import not_found_json
from edges.api.schema import SwaggerUI
from edges.api.views import ai, audit, auth, cases, decisions, findings, grants, hand_offs, receipts, requests

router = SimpleRouter()
router.register("cases", cases.CaseViewSet, basename="case")
router.register("decisions", decisions.DecisionViewSet, basename="decision")
router.register("authority-requests", requests.AuthorityRequestViewSet, basename="authority-request")
router.register("grants", grants.GrantViewSet, basename="grant")
router.register("audit-events", audit.AuditEventViewSet, basename="audit-event")
router.register("hand-offs", hand_offs.HandOffViewSet, basename="hand-off")
router.register("auth/tokens", auth.TokenViewSet, basename="auth-token")

app_name = "api"

v1 = [
    path("auth/token/", auth.TokenView.as_view(), name="token"),
    path("me/", auth.MeView.as_view(), name="me"),
    path("authority-kinds/", decisions.KindList.as_view(), name="authority-kinds"),
    path("authority-check/", decisions.AuthorityCheck.as_view(), name="authority-check"),
    path("audit-verify/", audit.AuditVerify.as_view(), name="audit-verify"),
    path("audit-verifications/<int:pk>/", audit.AuditVerificationDetail.as_view(), name="audit-verification-detail"),
    path("findings/", findings.FindingsView.as_view(), name="findings"),
    path("decisions/<int:pk>/receipt/", receipts.DecisionReceipt.as_view(), name="decision-receipt"),
    path("audit-checkpoints/consistency/", receipts.CheckpointConsistency.as_view(),
         name="audit-checkpoint-consistency"),
    # The tools of an AI agent (edges.api.views.ai)
    path("ai/me/", ai.Me.as_view(), name="ai-me"),
    path("ai/take/", ai.Take.as_view(), name="ai-take"),
    path("ai/check/", ai.Check.as_view(), name="ai-check"),
    path("ai/decide/", ai.Decide.as_view(), name="ai-decide"),
    path("ai/hand-off/", ai.HandOffTool.as_view(), name="ai-hand-off"),
    *router.urls,
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SwaggerUI.as_view(url_name="api:schema"), name="docs"),
    # Anything else under /api/ is a 404 in the API's error shape, not an HTML page.
    re_path(r"^[\s\S]*$", not_found_json),  # [\s\S]: a path may contain a newline
]
