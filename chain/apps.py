from django.apps import AppConfig

OUTBOX_WRITER = "chain.outbox"


class ChainConfig(AppConfig):
    name = "chain"
    verbose_name = "Chain anchoring"

    def ready(self) -> None:
        # Here, not at the top: the services import models, which exist only once the registry is ready.
        from chain.selectors import with_chain_state  # noqa: PLC0415
        from chain.services import (  # noqa: PLC0415
            outbox_drain_trigger,
            outbox_enqueue_recorded,
            outbox_insert_sql,
        )
        from tickets.hooks import (  # noqa: PLC0415
            CHAIN_COLUMN,
            EventWriter,
            TicketColumn,
            register_event_hook,
            register_event_writer,
            register_ticket_column,
        )

        # Every recorded ticket event gets its outbox row in the same transaction.
        register_event_writer(
            EventWriter(name=OUTBOX_WRITER, write=outbox_enqueue_recorded, write_sql=outbox_insert_sql)
        )
        # Every ticket row a selector reads carries its anchoring state.
        register_ticket_column(TicketColumn(name=CHAIN_COLUMN, annotate=with_chain_state))
        # Every committed ticket event asks for a drain (debounced); the beat sweep covers lost triggers.
        register_event_hook(outbox_drain_trigger, many=outbox_drain_trigger)
