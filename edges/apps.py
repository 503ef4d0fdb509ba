from django.apps import AppConfig


class EdgesConfig(AppConfig):
    name = "edges"
    verbose_name = "H2H edges: agent pages, consoles, REST API, admin, commands"
