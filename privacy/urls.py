"""The export's URLs: `api_urlpatterns` under /api/v1/, `portal_urlpatterns` under /tickets/."""

from django.urls import path

from privacy import views

api_urlpatterns = [
    path("export", views.ExportView.as_view(), name="api-export"),
    path(
        "tickets/<str:ticket_id>/envelope-keys",
        views.EnvelopeKeysView.as_view(),
        name="api-ticket-envelope-keys",
    ),
]
portal_urlpatterns = [path("export/", views.portal_export, name="portal-export")]
