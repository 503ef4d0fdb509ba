from django.urls import path

from edges.agent import customers

urlpatterns = [
    path("<int:pk>/", customers.customer_detail, name="detail"),
    path("<int:pk>/notes/", customers.customer_note_add_view, name="note_add"),
]
