from django.urls import path

from edges.auditor import views as views_audit

urlpatterns = [
    path("", views_audit.audit_log, name="log"),
    path("decisions/", views_audit.decision_log, name="decisions"),
    path("decisions/<int:pk>/", views_audit.decision_detail, name="decision"),
    path("decisions/<int:pk>/flag/", views_audit.flag_decision, name="flag"),
    path("grants/<int:pk>/", views_audit.grant_version, name="grant"),
    path("authority/", views_audit.authority_at, name="authority_at"),
    path("changes/", views_audit.changes, name="changes"),
    path("chain/", views_audit.chain, name="chain"),
    path("verify/", views_audit.verify, name="verify"),
    path("chain/checkpoints.json", views_audit.checkpoints_json, name="checkpoints"),
    path("chain/public-key.pem", views_audit.public_key, name="public_key"),
    path("export/<slug:dataset>.<slug:fmt>", views_audit.export, name="export"),
    path("review/", views_audit.review, name="review"),
    path("review/flags/", views_audit.flags, name="flags"),
]
