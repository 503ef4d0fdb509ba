from django.conf import settings
from django.db import migrations

ROLES = ["Agent", "Senior agent", "Manager", "Auditor", "Fallback approvers"]


def forwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    Organisation = apps.get_model("h2h_core", "Organisation")
    Organisation.objects.get_or_create(
        pk=1,
        defaults={
            "name": settings.H2H_ORGANISATION_NAME,
            "base_currency": settings.H2H_BASE_CURRENCY,
            "time_zone": settings.H2H_TIME_ZONE,
        },
    )
    AuditHead = apps.get_model("h2h_core", "AuditHead")
    AuditHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": "0" * 64})


class Migration(migrations.Migration):
    dependencies = [("h2h_core", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
