from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "edges.demo"
    label = "demo"
    verbose_name = "H2H demo data (development only)"
