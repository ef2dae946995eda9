"""Drop knox's own token table, which the swapped-in ApiToken replaces.

django-rest-knox's initial migration creates `knox_authtoken` whether or not KNOX_TOKEN_MODEL
swaps the model out. Nothing reads or writes it, but its foreign key to auth_user makes
PostgreSQL refuse `manage.py flush` (and the test suite's flush between transactional tests),
because Django no longer lists the swapped-out table among those to truncate.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [
        migrations.RunSQL(
            sql="DROP TABLE IF EXISTS knox_authtoken",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
