from django.db import migrations


def create_head(apps, schema_editor):
    # The naive chain starts like the product's: one head row at seq 0 with the genesis hash.
    apps.get_model("bench_comparison", "NaiveAuditHead").objects.get_or_create(pk=1, defaults={"seq": 0,
                                                                                             "hash": "0" * 64})


class Migration(migrations.Migration):
    dependencies = [("bench_comparison", "0001_initial")]

    operations = [migrations.RunPython(create_head, migrations.RunPython.noop)]
