"""The console's page of one customer: who they are, their deployments and providers, their tickets and
how the SLA went for them, one click from any ticket."""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from console.views import support_party
from tickets.selectors.people import customer_profile


def customer_page(request: HttpRequest, site: AdminSite, address: str) -> HttpResponse:
    profile = customer_profile(support_party(request), address)
    if profile is None:
        raise Http404("No customer has this address.")
    context = {
        **site.each_context(request),
        "title": profile.person.label,
        "profile": profile,
    }
    return TemplateResponse(request, "admin/console/customer.html", context)
