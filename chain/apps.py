from django.apps import AppConfig


class ChainConfig(AppConfig):
    name = "chain"
    verbose_name = "Chain anchoring"

    def ready(self) -> None:
        from chain.services import outbox_drain_trigger
        from tickets.hooks import register_event_hook

        # Every committed ticket event asks for a drain (debounced); the beat sweep covers lost triggers.
        register_event_hook(outbox_drain_trigger)
