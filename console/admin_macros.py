"""Macros in the support console: support's shared macros and every provider's, written, changed and deleted
through `tickets.services` (the same checks as the API and the portal: known placeholders only, a status the
owner may set, one name per owner). Managing them needs the `tickets.work_ticket` permission that working
tickets needs; Django's own add/change/delete permissions are granted to no one.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from console.views import may_work, support_party
from providers.admin import ThroughServices
from tickets import services
from tickets.models import Ticket
from tickets.models.macros import Macro

PLACEHOLDERS = ", ".join(f"{{{name}}}" for name in services.PLACEHOLDERS)


class MacroAdminForm(forms.ModelForm):
    status = forms.ChoiceField(
        choices=[("", "Leave as it is"), *Ticket.Status.choices], required=False, label="Then set the status"
    )
    priority = forms.ChoiceField(
        choices=[("", "Leave as it is"), *Ticket.Priority.choices], required=False, label="And the priority"
    )

    class Meta:
        model = Macro
        fields = ("provider", "name", "body", "is_internal", "status", "priority")
        help_texts = {
            "body": f"The reply; empty: none. Placeholders: {PLACEHOLDERS}; {{{{ and }}}} write braces.",
        }


@admin.register(Macro)
class MacroAdmin(ThroughServices, admin.ModelAdmin):
    form = MacroAdminForm
    list_display = ("name", "owner", "is_internal", "status", "priority", "updated_at")
    list_filter = ("is_internal", "provider")
    search_fields = ("name", "body")
    list_select_related = ("provider",)
    add_fields = ("provider", "name", "body", "is_internal", "status", "priority")
    change_fields = (*add_fields, "created_by_label", "created_at", "updated_at")
    editable_fields = ("name", "body", "is_internal", "status", "priority")

    class Media:
        css = {"all": ("portal/console.css",)}

    @admin.display(description="Owner", ordering="provider__name")
    def owner(self, macro: Macro) -> str:
        return macro.owner_label

    def _may_manage(self, request: HttpRequest) -> bool:
        return may_work(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may_manage(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        del obj  # every macro alike
        return self._may_manage(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        del obj
        return self._may_manage(request)

    def save_through_service(self, request: HttpRequest, obj: Model | None, data: dict[str, Any]) -> Macro:
        party = support_party(request)
        fields = {key: data[key] for key in ("name", "body", "is_internal", "status", "priority")}
        if obj is None:
            provider = data.get("provider")
            return services.macro_create(actor=party, provider_id=provider.pk if provider else None, **fields)
        return services.macro_update(actor=party, macro_id=obj.pk, **fields)

    def delete_model(self, request: HttpRequest, obj: Macro) -> None:
        services.macro_delete(actor=support_party(request), macro_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Macro]) -> None:
        party = support_party(request)
        for macro_id in queryset.values_list("pk", flat=True):
            services.macro_delete(actor=party, macro_id=macro_id)
