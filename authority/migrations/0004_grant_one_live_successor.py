"""A grant version may have several successors, but only one live one (pending or active).

A rejected or voided proposal no longer blocks the next change: the one-to-one `supersedes` becomes
a foreign key with a unique constraint on the live rows only (a partial index on SQLite and
PostgreSQL). A pending change of an ended grant gets its own status, voided.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("authority", "0003_oversight_and_integration"),
    ]

    operations = [
        migrations.AlterField(
            model_name="grant",
            name="status",
            field=models.CharField(
                choices=[("pending", "Pending confirmation"), ("active", "Active"), ("rejected", "Rejected"),
                         ("voided", "Voided (the grant was ended)")],
                default="active",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="grant",
            name="supersedes",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="successors",
                to="authority.grant",
            ),
        ),
        migrations.AddConstraint(
            model_name="grant",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ("pending", "active"))), fields=("supersedes",),
                name="grant_one_live_successor",
            ),
        ),
    ]
