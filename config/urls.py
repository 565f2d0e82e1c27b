"""Top-level URL configuration: admin, REST API v1 with its schema and docs, portal pages."""

from django.contrib import admin
from django.urls import include, path, re_path

from core.errors import api_not_found, django_error_handler

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
]

# The API answers JSON, always: whatever no route matches under /api/ (a typo, a trailing slash), and
# Django's own refusals there (handlers; they keep Django's plain pages for every other path).
urlpatterns.append(re_path(r"^api/", api_not_found))
handler400 = django_error_handler(400)
handler403 = django_error_handler(403)
handler404 = django_error_handler(404)
handler500 = django_error_handler(500)
