"""The permission to export connectors with their secrets (connectors.export_secrets).

No role group gets it: an administrator grants it to a person, in the Django admin, for the time
a move to another installation takes (README, "Import and export"). Django creates the
permission row itself after migrating.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('connectors', '0005_client_authentication_unencoded'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='connector',
            options={'ordering': ['name'], 'permissions': [('test_connector', 'Can run connection tests'), ('import_connectors', 'Can import and export connectors'), ('export_secrets', 'Can export connectors with their secrets')]},
        ),
    ]
