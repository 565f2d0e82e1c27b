from django.apps import AppConfig


class ChainConfig(AppConfig):
    name = "chain"
    verbose_name = "Chain anchoring"

    def ready(self) -> None:
        # Here, not at the top: the services import models, which exist only once the registry is ready.
        from chain.services import outbox_drain_trigger  # noqa: PLC0415
        from tickets.hooks import register_event_hook  # noqa: PLC0415

        # Every committed ticket event asks for a drain (debounced); the beat sweep covers lost triggers.
        register_event_hook(outbox_drain_trigger, many=outbox_drain_trigger)
