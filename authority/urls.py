from django.urls import path

from . import views

urlpatterns = [
    path("", views.my_authority, name="mine"),
    path("approvals/", views.approvals, name="approvals"),
    path("approvals/<int:pk>/approve/", views.approve, name="approve"),
    path("approvals/<int:pk>/reject/", views.reject, name="reject"),
    path("pending/", views.pending_grants, name="pending"),
    path("pending/<int:pk>/confirm/", views.confirm_grant, name="confirm"),
    path("pending/<int:pk>/reject/", views.reject_grant, name="reject_grant"),
]
