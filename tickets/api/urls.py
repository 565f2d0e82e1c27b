"""REST API v1 routes, without trailing slashes as VirtEngine's clients call them."""

from django.urls import path

from tickets.api import macros, satisfaction, views

urlpatterns = [
    path("tickets", views.TicketListCreateView.as_view(), name="api-tickets"),
    path("tickets/<str:ticket_id>", views.TicketDetailView.as_view(), name="api-ticket-detail"),
    path("tickets/<str:ticket_id>/comments", views.TicketCommentsView.as_view(), name="api-ticket-comments"),
    path("tickets/<str:ticket_id>/events", views.TicketEventsView.as_view(), name="api-ticket-events"),
    path("tickets/<str:ticket_id>/escalate", views.TicketEscalateView.as_view(), name="api-ticket-escalate"),
    path("tickets/<str:ticket_id>/assign", views.TicketAssignView.as_view(), name="api-ticket-assign"),
    path("tickets/<str:ticket_id>/links", views.TicketLinksView.as_view(), name="api-ticket-links"),
    path("tickets/<str:ticket_id>/logs", views.TicketLogsView.as_view(), name="api-ticket-logs"),
    path(
        "tickets/<str:ticket_id>/macros/<str:macro_id>/apply",
        macros.MacroApplyView.as_view(),
        name="api-ticket-macro-apply",
    ),
    path(
        "tickets/<str:ticket_id>/satisfaction",
        satisfaction.TicketSatisfactionView.as_view(),
        name="api-ticket-satisfaction",
    ),
    path("macros", macros.MacroListCreateView.as_view(), name="api-macros"),
    path("macros/<str:macro_id>", macros.MacroDetailView.as_view(), name="api-macro-detail"),
    path("attachments", views.AttachmentUploadView.as_view(), name="api-attachments"),
    path(
        "attachments/<str:attachment_id>",
        views.AttachmentDownloadView.as_view(),
        name="api-attachment-detail",
    ),
    path("deployments", views.DeploymentListView.as_view(), name="api-deployments"),
    path("sla/report", views.SlaReportView.as_view(), name="api-sla-report"),
]
