from django.apps import AppConfig


class WorkerConfig(AppConfig):
    name = "edges.worker"
    label = "worker"
    verbose_name = "H2H worker: periodic jobs"
    default_auto_field = "django.db.models.BigAutoField"
