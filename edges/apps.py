from django.apps import AppConfig


class EdgesConfig(AppConfig):
    name = "edges"
    verbose_name = "H2H edges: agent pages, consoles, REST API, admin, commands"

    def ready(self):
        # Sign-in events are audited through the auth apps' documented signals (edges.web.auth).
        from edges.web.auth import connect_receivers

        connect_receivers()
