from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Webhooks and email"

    def ready(self) -> None:
        # Here, not at the top: the services import models, which exist only once the registry is ready.
        from notifications.services import (  # noqa: PLC0415
            notifications_enqueue,
            notifications_trigger,
            notifications_trigger_many,
        )
        from tickets.hooks import EventWriter, register_event_hook, register_event_writer  # noqa: PLC0415

        # Every recorded ticket event gets its webhook deliveries and pending emails in the same transaction.
        register_event_writer(EventWriter(name="notifications", write=notifications_enqueue))
        # After an event commits: a delivery task for its webhooks, a flush for when its digest closes.
        register_event_hook(notifications_trigger, many=notifications_trigger_many)
