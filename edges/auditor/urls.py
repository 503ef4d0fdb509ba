from django.urls import path

from edges.auditor import ai_vs_human, export_views, findings, outcomes, views

urlpatterns = [
    path("", views.audit_log, name="log"),
    path("decisions/", views.decision_log, name="decisions"),
    path("decisions/<int:pk>/", views.decision_detail, name="decision"),
    path("decisions/<int:pk>/receipt.json", views.decision_receipt, name="decision_receipt"),
    path("decisions/<int:pk>/flag/", views.flag_decision, name="flag"),
    path("grants/<int:pk>/", views.grant_version, name="grant"),
    path("authority/", views.authority_at, name="authority_at"),
    path("changes/", views.changes, name="changes"),
    path("chain/", views.chain, name="chain"),
    path("verify/", views.verify, name="verify"),
    path("verify/request/", views.verify_request, name="verify_request"),
    path("chain/checkpoints.json", views.checkpoints_json, name="checkpoints"),
    path("chain/public-key.pem", views.public_key, name="public_key"),
    path("export/<slug:dataset>.<slug:fmt>", export_views.export, name="export"),
    path("exports/", export_views.export_list, name="exports"),
    path("exports/<int:pk>/download/", export_views.export_download, name="export_download"),
    path("review/", views.review, name="review"),
    path("review/flags/", views.flags, name="flags"),
    path("ai-vs-human/", ai_vs_human.ai_vs_human, name="ai_vs_human"),
    path("ai-vs-human.csv", ai_vs_human.ai_vs_human_csv, name="ai_vs_human_csv"),
    path("findings/", findings.findings_page, name="findings"),
    path("findings/flag/", findings.flag_finding, name="findings_flag"),
    path("findings.csv", findings.findings_csv, name="findings_csv"),
    path("outcomes/", outcomes.outcomes, name="outcomes"),
    path("outcomes.csv", outcomes.outcomes_csv, name="outcomes_csv"),
]
