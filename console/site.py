"""The console's admin site: VirtEngine staff only, landing on the escalation queue."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.functional import SimpleLazyObject

from console import erasure, people, views


class SupportConsoleSite(admin.AdminSite):
    site_header = "VirtEngine Support console"
    site_title = "VirtEngine Support console"
    index_title = "Escalation queue"
    # The model list stays one click away ("Models"); the pages agents work in get the whole width.
    enable_nav_sidebar = False

    def has_permission(self, request: HttpRequest) -> bool:
        """Staff of the support group (or superusers); provider members and customers never get in."""
        return super().has_permission(request) and views.console_party(request) is not None

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        """Built when read: every page's context carries the list for the navigation sidebar, which this
        site turns off, and building it checks four permissions per registered model (a quarter of a work
        page's time). Only the model index (`models/`) reads it."""
        build = admin.AdminSite.get_app_list
        return cast(list[Any], SimpleLazyObject(lambda: build(self, request, app_label)))

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The landing page: the escalation queue."""
        return views.queue(request, self)

    def get_urls(self) -> list[URLPattern]:
        return [
            path("models/", self.admin_view(self.models_index), name="models"),
            path("dashboard/", self.admin_view(self.dashboard), name="console-dashboard"),
            path("customers/<str:address>/", self.admin_view(self.customer), name="console-customer"),
            path(
                "customers/<str:address>/erase/",
                self.admin_view(self.erase_customer),
                name="console-erase-customer",
            ),
            *super().get_urls(),
        ]

    def models_index(self, request: HttpRequest) -> HttpResponse:
        """Django's own index (the list of models), one click away from the queue."""
        return super().index(request)

    def dashboard(self, request: HttpRequest) -> HttpResponse:
        return views.dashboard(request, self)

    def customer(self, request: HttpRequest, address: str) -> HttpResponse:
        return people.customer_page(request, self, address)

    def erase_customer(self, request: HttpRequest, address: str) -> HttpResponse:
        return erasure.erase_page(request, self, address)
