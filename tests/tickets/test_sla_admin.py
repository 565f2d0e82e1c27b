"""SLA policies and business calendars in the admin: superusers edit them (calendars validated, with the
field named), support staff may only look."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.conftest import World
from tickets.models import BusinessCalendar, SlaPolicy

pytestmark = pytest.mark.django_db

CALENDARS = "/admin/tickets/businesscalendar/"


def calendar_form(**fields: str) -> dict[str, str]:
    return {
        "name": "Berlin office",
        "time_zone": "Europe/Berlin",
        "opening_hours": '{"mon": [["09:00", "17:00"]], "fri": [["09:00", "15:00"]]}',
        "holiday_country": "DE",
        "holiday_subdivision": "BY",
        "closed_dates": "2026-12-24,2026-12-31",
        **fields,
    }


def test_a_superuser_creates_a_calendar_and_puts_a_policy_on_it(world: World, admin_client: Client) -> None:
    created = admin_client.post(f"{CALENDARS}add/", calendar_form())
    assert created.status_code == 302, created.content.decode()[:2000]
    office = BusinessCalendar.objects.get(name="Berlin office")
    assert [day.isoformat() for day in office.closed_dates] == ["2026-12-24", "2026-12-31"]
    policy = SlaPolicy.objects.get(priority="high")
    changed = admin_client.post(
        f"/admin/tickets/slapolicy/{policy.pk}/change/",
        {
            "priority": "high",
            "first_response_minutes": "120",
            "resolution_minutes": "960",
            "calendar": str(office.pk),
            "escalate_on_breach": "",
        },
    )
    assert changed.status_code == 302
    policy.refresh_from_db()
    assert (policy.first_response_minutes, policy.calendar, policy.escalate_on_breach) == (120, office, False)
    ticket = world.open_ticket(priority="high", category="general")
    ticket.refresh_from_db()
    assert ticket.sla_policy == policy


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time_zone", "Mars/Olympus", "IANA time zone"),
        ("opening_hours", '{"monday": [["09:00", "17:00"]]}', "Unknown day"),
        ("opening_hours", '{"mon": [["17:00", "09:00"]]}', "does not open before it closes"),
        ("holiday_country", "XX", "holidays package"),
    ],
)
def test_a_bad_calendar_is_refused_naming_the_field(
    admin_client: Client, field: str, value: str, message: str
) -> None:
    response = admin_client.post(f"{CALENDARS}add/", calendar_form(**{field: value}))
    assert response.status_code == 200  # the form again, with the error
    assert message in response.context["adminform"].form.errors[field][0]
    assert not BusinessCalendar.objects.exists()


def test_support_staff_may_look_but_not_edit(world: World) -> None:
    client = Client()
    client.force_login(get_user_model().objects.get(pk=world.agent.user_id))
    policy = SlaPolicy.objects.get(priority="critical")
    assert client.get("/admin/tickets/slapolicy/").status_code == 200
    refused = client.post(
        f"/admin/tickets/slapolicy/{policy.pk}/change/",
        {"priority": "critical", "first_response_minutes": "1", "resolution_minutes": "1"},
    )
    assert refused.status_code == 403
    assert client.post(f"{CALENDARS}add/", calendar_form()).status_code == 403
    policy.refresh_from_db()
    assert policy.first_response_minutes == 60
