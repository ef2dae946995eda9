"""TestRun and TestAttempt now belong to audit (see audit 0004): drop them from this app's
state only, so the tables and their rows stay. A proxy keeps the admin page of test runs at
/admin/connectors/testrun/ (and the connectors|testrun content type and its permissions).
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0004_testrun_testattempt_from_connectors'),
        ('connectors', '0003_testrun_unsaved_connector'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name='TestAttempt',
                ),
                migrations.DeleteModel(
                    name='TestRun',
                ),
                migrations.CreateModel(
                    name='TestRun',
                    fields=[
                    ],
                    options={
                        'proxy': True,
                        'indexes': [],
                        'constraints': [],
                    },
                    bases=('audit.testrun',),
                ),
            ],
            database_operations=[],
        ),
    ]
