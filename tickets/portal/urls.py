"""The portal's ticket pages (`/tickets/…`), and their partials for htmx and the live script."""

from django.urls import path

from tickets.portal import actions, files, macros, satisfaction, views

urlpatterns = [
    path("", views.ticket_list, name="portal-ticket-list"),
    path("new/", views.ticket_create, name="portal-ticket-create"),
    path("rows/<str:ticket_id>/", views.ticket_row, name="portal-ticket-row"),
    path("satisfaction/<str:token>/", satisfaction.rate_by_link, name="portal-satisfaction-link"),
    path("macros/", macros.macro_list, name="portal-macros"),
    path("macros/<str:macro_id>/", macros.macro_edit, name="portal-macro-edit"),
    path("macros/<str:macro_id>/delete/", macros.macro_delete, name="portal-macro-delete"),
    path("<str:reference>/", views.ticket_detail, name="portal-ticket-detail"),
    path("<str:reference>/live/", views.ticket_live, name="portal-ticket-live"),
    path("<str:reference>/comments/<str:comment_id>/", views.ticket_comment, name="portal-ticket-comment"),
    path("<str:reference>/reply/", actions.ticket_reply, name="portal-ticket-reply"),
    path("<str:reference>/status/", actions.ticket_move, name="portal-ticket-move"),
    path("<str:reference>/files/<str:attachment_id>/", files.file_view, name="portal-ticket-file"),
    path("<str:reference>/close/", actions.ticket_close, name="portal-ticket-close"),
    path("<str:reference>/escalate/", actions.ticket_escalate, name="portal-ticket-escalate"),
    path("<str:reference>/links/", actions.ticket_link, name="portal-ticket-link"),
    path("<str:reference>/links/remove/", actions.ticket_unlink, name="portal-ticket-unlink"),
    path("<str:reference>/logs/", actions.ticket_fetch_logs, name="portal-ticket-logs"),
    path("<str:reference>/macro/", macros.ticket_macro_apply, name="portal-ticket-macro"),
    path("<str:reference>/satisfaction/", satisfaction.ticket_rate, name="portal-ticket-rate"),
]
