"""Schedules and notification rules, and the two beat entries that drive them.

The PeriodicTasks are created here (not on first use), so a fresh `migrate` gives beat its work:
the dispatcher every minute, the Client Secret expiry check daily at 06:00 (CELERY_TIMEZONE).
"""

import connectors.fields
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


DISPATCHER = "connectors: scheduled re-validation"
EXPIRY = "connectors: client secret expiry notices"


def create_periodic_tasks(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=DISPATCHER,
        defaults={"task": "connectors.schedule_dispatch", "interval": every_minute},
    )
    daily, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="6", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    PeriodicTask.objects.get_or_create(
        name=EXPIRY,
        defaults={"task": "connectors.secret_expiry_check", "crontab": daily},
    )


def remove_periodic_tasks(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[DISPATCHER, EXPIRY]
    ).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('connectors', '0010_batches'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.CreateModel(
            name='ConnectorSchedule',
            fields=[
                ('connector', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='schedule', serialize=False, to='connectors.connector')),
                ('mode', models.CharField(choices=[('default', 'Use the default'), ('every', 'Its own interval'), ('off', 'Off')], default='default', max_length=8)),
                ('interval_minutes', models.PositiveIntegerField(blank=True, null=True)),
                ('last_slot_at', models.DateTimeField(blank=True, null=True)),
                ('last_queued_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'default_permissions': (),
            },
        ),
        migrations.CreateModel(
            name='NotificationRule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('owner_team', models.CharField(blank=True, max_length=128, unique=True)),
                ('emails', models.TextField(blank=True, help_text='One address a line (or comma-separated).')),
                ('webhook_url', connectors.fields.SecretCharField(blank=True)),
                ('enabled', models.BooleanField(default=True)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['owner_team'],
                'default_permissions': (),
            },
        ),
        migrations.CreateModel(
            name='NotificationState',
            fields=[
                ('connector', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='notification_state', serialize=False, to='connectors.connector')),
                ('failing_notified_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'default_permissions': (),
            },
        ),
        migrations.CreateModel(
            name='ScheduleSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('default_interval_minutes', models.PositiveIntegerField(help_text='Re-test every connector this often, unless it has its own schedule. 0 turns scheduled tests off.')),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'default_permissions': (),
            },
        ),
        migrations.CreateModel(
            name='SecretExpiryNotice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('expires_on', models.DateField()),
                ('days_before', models.PositiveSmallIntegerField()),
                ('sent_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('connector', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='secret_expiry_notices', to='connectors.connector')),
            ],
            options={
                'default_permissions': (),
                'constraints': [models.UniqueConstraint(fields=('connector', 'expires_on', 'days_before'), name='secret_expiry_notice_once')],
            },
        ),
        migrations.RunPython(create_periodic_tasks, remove_periodic_tasks),
    ]
