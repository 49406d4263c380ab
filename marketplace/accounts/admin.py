from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import APIKey, User
from .services import api_key_revoke


class UserAddForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name", "role")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists.")
        return email


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("An account with this email already exists.")
        return email


class APIKeyInline(admin.TabularInline):
    model = APIKey
    extra = 0
    fields = readonly_fields = ("id", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserAddForm
    list_display = ["email", "name", "role", "is_active", "is_staff", "date_joined", "last_login"]
    list_filter = ["role", "is_active", "is_staff", "is_superuser", "date_joined"]
    search_fields = ["email", "name", "id"]
    ordering = ["-date_joined"]
    readonly_fields = ["id", "last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Profile", {"fields": ("name", "role", "support_email", "time_zone")}),
        (
            "Platform fee (overrides the default for this seller)",
            {"fields": ("platform_fee_bps", "platform_fee_fixed")},
        ),
        ("Payout hold (overrides the default for this seller)", {"fields": ("payout_hold_days",)}),
        ("Disputes", {"fields": ("dispute_revokes_access",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return [APIKeyInline] if obj is not None else []  # a new user has no keys yet

    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "name", "role", "usable_password", "password1", "password2"),
            },
        ),
    )


class APIKeyActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: Any, queryset: QuerySet[APIKey]) -> QuerySet[APIKey]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """Keys are created by sellers (the secret is shown to them once) and only ever revoked here.
    The stored hash is never shown: it is of no use to an operator and should not be copied around."""

    list_display = ["name", "prefix", "user", "is_active", "created_at", "last_used_at", "revoked_at"]
    list_filter = [APIKeyActiveFilter, "created_at"]
    search_fields = ["id", "name", "prefix", "user__email"]
    list_select_related = ["user"]
    ordering = ["-created_at"]
    fields = readonly_fields = ("id", "user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke_keys"]

    @admin.display(boolean=True, description="Active")
    def is_active(self, obj: APIKey) -> bool:
        return obj.revoked_at is None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row stays as a record of the key

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True).select_related("user"))
        for key in keys:
            api_key_revoke(user=key.user, key_id=key.id)
        self.message_user(request, f"Revoked {len(keys)} API key(s).", messages.SUCCESS)
