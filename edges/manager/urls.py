from django.urls import path

from edges.manager import grants, team, views

urlpatterns = [
    path("", views.my_authority, name="mine"),
    # The manager console.
    path("approvals/", views.approvals, name="approvals"),
    path("approvals/<int:pk>/approve/", views.approve, name="approve"),
    path("approvals/<int:pk>/reject/", views.reject, name="reject"),
    path("pending/", views.pending_grants, name="pending"),
    path("pending/<int:pk>/confirm/", views.check_grant, {"outcome": "confirm"}, name="confirm"),
    path("pending/<int:pk>/reject/", views.check_grant, {"outcome": "reject"}, name="reject_grant"),
    path("matrix/", grants.matrix, name="matrix"),
    path("grants/new/", grants.grant_new, name="grant_new"),
    path("grants/<int:pk>/edit/", grants.grant_edit, name="grant_edit"),
    path("grants/<int:pk>/end/", grants.grant_end_view, name="grant_end"),
    path("people/", team.people, name="people"),
    path("delegations/", team.delegations, name="delegations"),
    path("delegations/<int:pk>/revoke/", team.delegation_revoke_view, name="delegation_revoke"),
    path("what-if/", team.what_if, name="what_if"),
    path("dashboard/", team.dashboard, name="dashboard"),
]
