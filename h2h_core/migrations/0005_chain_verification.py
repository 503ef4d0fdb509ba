import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('h2h_core', '0004_outbound_mail'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ChainVerification',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('requested_at', models.DateTimeField()),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('passed', 'Passed'), ('failed', 'Failed'), ('error', 'Could not complete')], default='queued', max_length=8)),
                ('mode', models.CharField(choices=[('incremental', 'Incremental (from the last verified checkpoint)'), ('full', 'Full (from the first entry)')], default='incremental', max_length=12)),
                ('anchor_checkpoint_id', models.BigIntegerField(blank=True, null=True)),
                ('from_seq', models.BigIntegerField(blank=True, null=True)),
                ('to_seq', models.BigIntegerField(blank=True, null=True)),
                ('events_checked', models.BigIntegerField(default=0)),
                ('first_bad_seq', models.BigIntegerField(blank=True, null=True)),
                ('summary', models.TextField(blank=True)),
                ('checkpoint_results', models.JSONField(blank=True, default=list)),
                ('warnings', models.JSONField(blank=True, default=list)),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-requested_at', '-id'],
                'constraints': [models.UniqueConstraint(models.Value(1), condition=models.Q(('status__in', ['queued', 'running'])), name='chain_verification_one_active')],
            },
        ),
    ]
