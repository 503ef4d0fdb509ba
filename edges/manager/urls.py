from django.urls import path

from edges.manager import console as views_manager
from edges.manager import views

urlpatterns = [
    path("", views.my_authority, name="mine"),
    # The manager console.
    path("approvals/", views.approvals, name="approvals"),
    path("approvals/<int:pk>/approve/", views.approve, name="approve"),
    path("approvals/<int:pk>/reject/", views.reject, name="reject"),
    path("pending/", views.pending_grants, name="pending"),
    path("pending/<int:pk>/confirm/", views.check_grant, {"outcome": "confirm"}, name="confirm"),
    path("pending/<int:pk>/reject/", views.check_grant, {"outcome": "reject"}, name="reject_grant"),
    path("matrix/", views_manager.matrix, name="matrix"),
    path("grants/new/", views_manager.grant_new, name="grant_new"),
    path("grants/<int:pk>/edit/", views_manager.grant_edit, name="grant_edit"),
    path("grants/<int:pk>/end/", views_manager.grant_end_view, name="grant_end"),
    path("people/", views_manager.people, name="people"),
    path("delegations/", views_manager.delegations, name="delegations"),
    path("delegations/<int:pk>/revoke/", views_manager.delegation_revoke_view, name="delegation_revoke"),
    path("what-if/", views_manager.what_if, name="what_if"),
    path("dashboard/", views_manager.dashboard, name="dashboard"),
]
