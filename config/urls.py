"""Top-level URL configuration: admin, REST API v1 with its schema and docs, portal pages."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
]
