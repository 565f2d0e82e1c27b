"""Top-level URL configuration: the portal (sign-in and ticket pages), the support console, REST API v1."""

from django.contrib import admin
from django.urls import include, path, re_path

from core.errors import api_not_found, django_error_handler
from ops import views as ops_views
from privacy.urls import portal_urlpatterns as privacy_portal_urls

urlpatterns = [
    # First: the API is what is called most, and each pattern tried before a match costs (the admin's alone
    # are over a hundred), about 2 % of a list request's time.
    path("api/v1/", include("config.api_urls")),
    path("", include("accounts.urls")),
    path("tickets/", include(privacy_portal_urls)),  # before the ticket pages: /tickets/export/ is no ticket
    path("tickets/", include("tickets.portal.urls")),
    path("admin/", admin.site.urls),
    path("metrics", ops_views.metrics, name="metrics"),
]

# The API answers JSON, always: whatever no route matches under /api/ (a typo, a trailing slash), and
# Django's own refusals there (handlers; they keep Django's plain pages for every other path).
urlpatterns.append(re_path(r"^api/", api_not_found))
handler400 = django_error_handler(400)
handler403 = django_error_handler(403)
handler404 = django_error_handler(404)
handler500 = django_error_handler(500)
