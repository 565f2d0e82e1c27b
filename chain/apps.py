from django.apps import AppConfig

OUTBOX_WRITER = "chain.outbox"


class ChainConfig(AppConfig):
    name = "chain"
    verbose_name = "Chain anchoring"

    def ready(self) -> None:
        # Here, not at the top: the services import models, which exist only once the registry is ready.
        from chain.services import (  # noqa: PLC0415
            outbox_drain_trigger,
            outbox_enqueue_recorded,
            outbox_insert_sql,
        )
        from tickets.hooks import EventWriter, register_event_hook, register_event_writer  # noqa: PLC0415

        # Every recorded ticket event gets its outbox row in the same transaction.
        register_event_writer(
            EventWriter(name=OUTBOX_WRITER, write=outbox_enqueue_recorded, write_sql=outbox_insert_sql)
        )
        # Every committed ticket event asks for a drain (debounced); the beat sweep covers lost triggers.
        register_event_hook(outbox_drain_trigger, many=outbox_drain_trigger)
