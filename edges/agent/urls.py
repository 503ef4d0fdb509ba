from django.urls import path

from edges.agent import hand_offs, inbox, presence, reversals, views

urlpatterns = [
    path("", views.case_list, name="list"),
    path("new/", views.case_new, name="new"),
    path("customers.json", views.customer_picker, name="customers"),
    path("waiting/", inbox.waiting, name="waiting"),
    path("<int:pk>/", views.case_detail, name="detail"),
    path("<int:pk>/claim/", views.case_claim_view, name="claim"),
    path("<int:pk>/handover/", views.case_handover_view, name="handover"),
    path("<int:pk>/review/", views.case_review, name="review"),
    path("<int:pk>/decide/", views.case_decide, name="decide"),
    path("<int:pk>/request/", views.case_request_authority, name="request"),
    path("<int:pk>/resolve/", views.case_resolve_view, name="resolve"),
    path("<int:pk>/reopen/", views.case_reopen_view, name="reopen"),
    path("<int:pk>/check/", views.case_check, name="check"),
    path("<int:pk>/decisions/<int:decision_id>/reverse/", reversals.decision_reverse_view, name="reverse"),
    path("<int:pk>/presence/", presence.case_presence, name="presence"),
    path("<int:pk>/hand-offs/<int:hand_off_id>/pick-up/", hand_offs.hand_off_pick_up_view, name="hand-off-pick-up"),
    # The customer's rating page: a signed link, no login.
    path("rate/<str:token>/", views.rate, name="rate"),
]
