"""Top-level URL configuration: the portal (sign-in and ticket pages), the support console, REST API v1."""

from django.contrib import admin
from django.urls import include, path

from ops import views as ops_views

urlpatterns = [
    path("", include("accounts.urls")),
    path("tickets/", include("tickets.portal.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("metrics", ops_views.metrics, name="metrics"),
]
