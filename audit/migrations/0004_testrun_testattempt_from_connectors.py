"""TestRun and TestAttempt move from connectors to audit: the model state only.

They are audit history (append-only, hashed by the chain, removed only by audit_prune). The
tables keep their names (connectors_testrun, connectors_testattempt), with every index,
constraint, foreign key and PostgreSQL trigger (audit 0002) on them: no data moves, and the
database is not touched. The audit record's foreign key still points at the same table.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_roles_view_auditevent'),
        ('connectors', '0003_testrun_unsaved_connector'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='TestRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('connector_id', models.BigIntegerField(blank=True, db_index=True, null=True)),
                        ('connector_name', models.CharField(db_index=True, max_length=64)),
                        ('user_id', models.BigIntegerField(blank=True, null=True)),
                        ('username', models.CharField(blank=True, max_length=150)),
                        ('source', models.CharField(choices=[('saved', 'Saved configuration'), ('form', 'Unsaved form values'), ('cli', 'Command line'), ('background', 'Background')], max_length=16)),
                        ('started_at', models.DateTimeField()),
                        ('duration_ms', models.PositiveIntegerField(default=0)),
                        ('ok', models.BooleanField(default=False)),
                        ('outcome', models.CharField(max_length=32)),
                        ('message', models.TextField(blank=True)),
                        ('hint', models.TextField(blank=True)),
                        ('client_authentication_used', models.CharField(blank=True, max_length=32)),
                        ('token', models.JSONField(blank=True, null=True)),
                        ('config', models.JSONField(blank=True, default=dict)),
                    ],
                    options={
                        'db_table': 'connectors_testrun',
                        'ordering': ['-id'],
                        'indexes': [models.Index(fields=['connector_id', '-id'], name='testrun_connector_latest')],
                    },
                ),
                migrations.AlterField(
                    model_name='auditevent',
                    name='test_run',
                    field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='audit_event', to='audit.testrun'),
                ),
                migrations.CreateModel(
                    name='TestAttempt',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('position', models.PositiveSmallIntegerField()),
                        ('step', models.CharField(choices=[('token', 'Token request'), ('api', 'API request')], default='token', max_length=8)),
                        ('client_authentication', models.CharField(blank=True, max_length=32)),
                        ('method', models.CharField(max_length=8)),
                        ('url', models.CharField(max_length=2048)),
                        ('request_headers', models.JSONField(default=list)),
                        ('request_body', models.JSONField(default=list)),
                        ('status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('response_headers', models.JSONField(default=list)),
                        ('response_excerpt', models.TextField(blank=True)),
                        ('duration_ms', models.PositiveIntegerField(default=0)),
                        ('outcome', models.CharField(max_length=32)),
                        ('message', models.TextField(blank=True)),
                        ('curl', models.TextField(blank=True)),
                        ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attempts', to='audit.testrun')),
                    ],
                    options={
                        'db_table': 'connectors_testattempt',
                        'ordering': ['run', 'position'],
                        'constraints': [models.UniqueConstraint(fields=('run', 'position'), name='attempt_position_unique')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
