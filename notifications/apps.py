from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Webhooks and email"

    def ready(self) -> None:
        # Here, not at the top: the services import models, which exist only once the registry is ready.
        from notifications.services import notifications_trigger, notifications_trigger_many  # noqa: PLC0415
        from tickets.hooks import register_event_hook  # noqa: PLC0415

        # After an event commits: a delivery task for its webhooks, a flush for when its digest closes.
        register_event_hook(notifications_trigger, many=notifications_trigger_many)
