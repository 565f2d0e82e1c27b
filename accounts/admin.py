"""The console's users and groups: Django's own admin, plus what an edit of them means for open sockets.

Deactivating a user, or taking them out of the support group, ends what their open sockets may see: the
sockets concerned are re-checked as soon as the edit commits (core.access), not at their next periodic
re-check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from core.access import access_change_announce

if TYPE_CHECKING:
    from django.contrib.auth.models import User as _User

    # Django's admin classes are generic to the type checker only (no django_stubs_ext at run time).
    _UserAdmin = UserAdmin[_User]
else:
    _UserAdmin = UserAdmin

User = get_user_model()
# django.contrib.auth registered its own (it comes first in INSTALLED_APPS): these take their place.
for _model in (User, Group):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(User)
class ConsoleUserAdmin(_UserAdmin):
    def save_related(
        self, request: HttpRequest, form: ModelForm[_User], formsets: list[Any], change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        access_change_announce(user_ids=[form.instance.pk])

    def delete_model(self, request: HttpRequest, obj: _User) -> None:
        user_id = obj.pk
        super().delete_model(request, obj)
        access_change_announce(user_ids=[user_id])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[_User]) -> None:
        user_ids = list(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        access_change_announce(user_ids=user_ids)


@admin.register(Group)
class ConsoleGroupAdmin(GroupAdmin):
    def save_related(
        self, request: HttpRequest, form: ModelForm[Group], formsets: list[Any], change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        access_change_announce(everyone=True)
