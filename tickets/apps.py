from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "Support tickets"

    def ready(self) -> None:
        # Here, not at the top: the publisher and the index writer import models, which exist only once the
        # registry is ready.
        from django.contrib.auth import get_user_model  # noqa: PLC0415
        from django.db.models.signals import post_save  # noqa: PLC0415

        from providers.models import CustomerIdentity, Deployment, ProviderAccount  # noqa: PLC0415
        from tickets.hooks import register_event_hook, register_event_writer  # noqa: PLC0415
        from tickets.realtime import publish_event, publish_events  # noqa: PLC0415
        from tickets.services import search_index  # noqa: PLC0415

        register_event_hook(publish_event, many=publish_events)
        register_event_writer(search_index.SEARCH_INDEX_WRITER)
        # What the people on a ticket are called is searchable (by providers and support): their saves
        # rewrite the documents of their tickets, in the same transaction.
        for model, receiver in (
            (get_user_model(), search_index.reindex_after_user_save),
            (CustomerIdentity, search_index.reindex_after_identity_save),
            (ProviderAccount, search_index.reindex_after_provider_save),
            (Deployment, search_index.reindex_after_deployment_save),
        ):
            post_save.connect(receiver, sender=model, dispatch_uid=f"search-{receiver.__name__}")
