from django.apps import AppConfig


class H2HCoreConfig(AppConfig):
    name = "h2h_core"
    verbose_name = "H2H core: organisation, customers, cases, audit"
