"""Routes under /api/v1/ for webhooks and email notifications (no trailing slashes, as the ticket API)."""

from django.urls import path

from notifications.api import views

urlpatterns = [
    path("webhooks", views.WebhookEndpointsView.as_view(), name="api-webhooks"),
    path("webhooks/<str:endpoint_id>", views.WebhookEndpointDetailView.as_view(), name="api-webhook-detail"),
    path(
        "webhooks/<str:endpoint_id>/rotate-secret",
        views.WebhookSecretRotateView.as_view(),
        name="api-webhook-rotate-secret",
    ),
    path(
        "webhooks/<str:endpoint_id>/deliveries",
        views.WebhookDeliveriesView.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "webhooks/<str:endpoint_id>/deliveries/<str:delivery_id>",
        views.WebhookDeliveryDetailView.as_view(),
        name="api-webhook-delivery",
    ),
    path(
        "webhooks/<str:endpoint_id>/deliveries/<str:delivery_id>/redeliver",
        views.WebhookDeliveryRedeliverView.as_view(),
        name="api-webhook-delivery-redeliver",
    ),
    path(
        "webhooks/<str:endpoint_id>/redeliver",
        views.WebhookRedeliverRangeView.as_view(),
        name="api-webhook-redeliver",
    ),
    path("notifications/preferences", views.EmailPreferenceView.as_view(), name="api-email-preferences"),
    path(
        "notifications/unsubscribe/<str:token>",
        views.UnsubscribeView.as_view(),
        name="notifications-unsubscribe",
    ),
]
