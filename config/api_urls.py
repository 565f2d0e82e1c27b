"""URLs under /api/v1/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from privacy.urls import api_urlpatterns as privacy_api_urls

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("tickets.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include(privacy_api_urls)),
]
