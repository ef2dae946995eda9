"""Health rows for the connectors tested before health was recorded, rebuilt from their runs.

Idempotent (it recomputes every row); `manage.py connectors_health_backfill` runs the same code.
"""

from django.db import migrations


def backfill(apps, schema_editor):
    from connectors.health import connector_health_backfill

    connector_health_backfill(
        run_model=apps.get_model("audit", "TestRun"),
        connector_model=apps.get_model("connectors", "Connector"),
        health_model=apps.get_model("connectors", "ConnectorHealth"),
    )


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0004_testrun_testattempt_from_connectors"),
        ("connectors", "0007_health"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
