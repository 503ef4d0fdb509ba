from decimal import Decimal

from django.db import migrations

KINDS = [
    # code, name, unit, confirmation threshold, outbox topic
    ("refund", "Refund", "money", Decimal("2000"), "billing.refund.issue"),
    ("goodwill_credit", "Goodwill credit", "money", Decimal("1000"), "billing.credit.apply"),
    ("fee_waiver", "Fee waiver", "money", Decimal("500"), "billing.fee.waive"),
    ("contract_extension", "Contract extension", "months", Decimal("6"), "crm.contract.extend"),
    ("discount", "Discount", "percent", Decimal("25"), "billing.discount.apply"),
]


def forwards(apps, schema_editor):
    AuthorityKind = apps.get_model("authority", "AuthorityKind")
    for code, name, unit, threshold, topic in KINDS:
        AuthorityKind.objects.get_or_create(
            code=code,
            defaults={"name": name, "unit": unit, "confirmation_threshold": threshold, "outbox_topic": topic},
        )


class Migration(migrations.Migration):
    dependencies = [("authority", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
