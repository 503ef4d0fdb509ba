"""The product's URLs plus the comparison endpoints under /bench/ (bench/comparison/views.py)."""

from django.urls import include, path

from edges.urls import handler400, handler403, handler404, handler500
from edges.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    path("bench/", include("bench.comparison.urls")),
    *product_urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
