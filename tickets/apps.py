from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "Support tickets"

    def ready(self) -> None:
        # Here, not at the top: the publisher imports models, which exist only once the registry is ready.
        from tickets.hooks import register_event_hook  # noqa: PLC0415
        from tickets.realtime import publish_event, publish_events  # noqa: PLC0415

        register_event_hook(publish_event, many=publish_events)
