"""The SLA clock's columns for tickets that existed before it, the event kind's new name, and the design's
default policies wherever they are missing.

Existing policies were all 24×7, so the warning times are simple arithmetic here. Targets of tickets that
are past due and undecided get their warning and breach from the first sweep, like any other ticket.
"""

from django.db import migrations

DEFAULT_POLICIES = {
    # priority: (first response minutes, resolution minutes)
    "critical": (60, 4 * 60),
    "high": (4 * 60, 24 * 60),
    "medium": (8 * 60, 48 * 60),
    "low": (24 * 60, 72 * 60),
}

BACKFILL = """
UPDATE tickets_ticket t SET
    status_changed_at = COALESCE(
        CASE t.status WHEN 'resolved' THEN t.resolved_at WHEN 'closed' THEN t.closed_at END, t.last_activity_at
    ),
    sla_policy_id = (SELECT p.id FROM tickets_slapolicy p WHERE p.priority = t.priority),
    sla_paused_since = CASE
        WHEN t.status = 'waiting_customer' THEN t.last_activity_at
        WHEN t.status IN ('resolved', 'closed') THEN COALESCE(t.resolved_at, t.closed_at)
    END,
    sla_first_response_met = CASE
        WHEN t.first_response_at IS NOT NULL THEN t.first_response_at <= t.sla_first_response_due
        WHEN t.status IN ('resolved', 'closed') THEN COALESCE(t.resolved_at, t.closed_at) <= t.sla_first_response_due
    END,
    sla_resolution_met = CASE
        WHEN t.status IN ('resolved', 'closed') THEN COALESCE(t.resolved_at, t.closed_at) <= t.sla_resolution_due
    END,
    sla_first_response_warn_at = t.created_at + (t.sla_first_response_due - t.created_at) * 0.8,
    sla_resolution_warn_at = t.created_at + (t.sla_resolution_due - t.created_at) * 0.8;

UPDATE tickets_ticket SET sla_next_due = LEAST(
    CASE WHEN sla_first_response_met IS NULL THEN sla_first_response_due END,
    CASE WHEN sla_resolution_met IS NULL AND sla_paused_since IS NULL THEN sla_resolution_due END
);

UPDATE tickets_ticketevent SET kind = 'sla_breached' WHERE kind = 'sla_breach';
"""


def create_missing_policies(apps, schema_editor):
    SlaPolicy = apps.get_model("tickets", "SlaPolicy")
    for priority, (first_response, resolution) in DEFAULT_POLICIES.items():
        SlaPolicy.objects.get_or_create(
            priority=priority,
            defaults={"first_response_minutes": first_response, "resolution_minutes": resolution},
        )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0006_sla_clock")]

    operations = [
        migrations.RunPython(create_missing_policies, migrations.RunPython.noop),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
