"""The console's erasure page: erase a customer's personal content (the right to be forgotten), with the
reason, the request's reference and the address typed again as confirmation. The rules are the privacy
service's (`privacy.erasure.person_erase`); this page only asks and reports."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from console.views import support_party
from core.errors import ValidationFailed
from privacy.erasure import REASON_MAX_LENGTH, person_erase


class ErasureForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3}), label="Why (the request)"
    )
    reference = forms.CharField(max_length=200, required=False, label="Request reference (optional)")
    confirm = forms.CharField(max_length=90, label="Type the customer's address to confirm")


def erase_page(request: HttpRequest, site: AdminSite, address: str) -> HttpResponse:
    agent = support_party(request)
    form = ErasureForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            erasure = person_erase(actor=agent, address=address, **form.cleaned_data)
        except ValidationFailed as refused:
            for field, problems in refused.fields.items():
                for problem in problems:
                    form.add_error(field if field in form.fields else None, problem)
        else:
            messages.success(
                request,
                f"Content erased: {erasure.tickets_count} ticket(s), {erasure.events_count} event(s), "
                f"{erasure.attachments_count} file(s).",
            )
            return redirect("admin:console-customer", address=address)
    if request.method == "POST":
        status = 400
    context = {
        **site.each_context(request),
        "title": "Erase a person's content",
        "address": address,
        "form": form,
    }
    return TemplateResponse(request, "admin/console/erase_person.html", context, status=status)
