"""The design's default SLA policies (24×7): first response / resolution per priority."""

from django.db import migrations

DEFAULT_POLICIES = {
    # priority: (first response minutes, resolution minutes)
    "critical": (60, 4 * 60),
    "high": (4 * 60, 24 * 60),
    "medium": (8 * 60, 48 * 60),
    "low": (24 * 60, 72 * 60),
}


def create_policies(apps, schema_editor):
    SlaPolicy = apps.get_model("tickets", "SlaPolicy")
    for priority, (first_response, resolution) in DEFAULT_POLICIES.items():
        SlaPolicy.objects.get_or_create(
            priority=priority,
            defaults={"first_response_minutes": first_response, "resolution_minutes": resolution},
        )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]

    operations = [migrations.RunPython(create_policies, migrations.RunPython.noop)]
