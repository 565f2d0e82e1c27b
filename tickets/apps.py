from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "Support tickets"

    def ready(self) -> None:
        from tickets.hooks import register_event_hook
        from tickets.realtime import publish_event

        register_event_hook(publish_event)
