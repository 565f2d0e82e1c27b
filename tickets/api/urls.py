"""REST API v1 routes for tickets, attachments and deployments."""

urlpatterns: list = []
