from django.urls import path

from . import views

app_name = "bench"

urlpatterns = [
    path("bare/", views.Bare.as_view(), name="bare"),
    path("naive/", views.Naive.as_view(), name="naive"),
]
