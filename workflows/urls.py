from django.urls import path

from . import views

urlpatterns = [
    path("", views.case_list, name="list"),
    path("<int:pk>/", views.case_detail, name="detail"),
    path("<int:pk>/claim/", views.case_claim_view, name="claim"),
    path("<int:pk>/decide/", views.case_decide, name="decide"),
    path("<int:pk>/request/", views.case_request_authority, name="request"),
    path("<int:pk>/resolve/", views.case_resolve_view, name="resolve"),
    path("<int:pk>/check/", views.case_check, name="check"),
]
