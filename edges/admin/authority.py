from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.template.loader import render_to_string

from authority.models import (
    AuthorityKind,
    AuthorityRequest,
    Decision,
    Delegation,
    ExchangeRate,
    Grant,
    IdempotencyRecord,
    OutboxMessage,
    ReviewFlag,
    UsageCounter,
    WebhookDelivery,
    WebhookEndpoint,
)
from authority.services import grant_confirm
from authority.services.integration import webhook_delivery_retry, webhook_endpoint_save
from edges.admin.base import ReadOnlyAdmin, retry_action
from edges.web.service_calls import error_text
from h2h_core.errors import DomainError


@admin.register(AuthorityKind)
class AuthorityKindAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "unit", "confirmation_threshold", "outbox_topic")


@admin.action(description="Confirm the selected pending grants (as the second manager)")
def confirm_pending(modeladmin, request, queryset):
    for grant in queryset:
        try:
            grant_confirm(actor=request.user, grant=grant)
        except (DomainError, ValidationError) as error:  # a refusal is reported, never a 500
            modeladmin.message_user(request, f"{grant.label}: {error_text(error)}", messages.ERROR)


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdmin):
    list_display = ("label", "kind", "subject_label", "effect", "per_case_limit", "period_limit", "period",
                    "currency", "status", "state", "valid_from", "valid_until", "superseded_at")
    list_filter = ("kind", "effect", "status", "period")
    list_select_related = ("kind", "subject_user", "subject_team", "subject_role")
    actions = [confirm_pending]

    def get_queryset(self, request):
        return super().get_queryset(request).with_state()

    @admin.display(description="state now")
    def state(self, obj):
        # The same words as every console page (Grant.state, phrased by one template).
        return render_to_string("authority/_grant_state.html", {"g": obj})

    def has_change_permission(self, request, obj=None):
        # Needed for the action to show; the form itself stays read-only (no editable fields).
        return obj is None and request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ("id", "case", "agent", "kind", "amount", "currency", "grant", "executed_at")
    list_filter = ("kind",)
    list_select_related = ("case", "agent", "kind", "grant")


@admin.register(AuthorityRequest)
class AuthorityRequestAdmin(ReadOnlyAdmin):
    list_display = ("id", "case", "requester", "kind", "amount", "currency", "status", "decided_by", "created_at")
    list_filter = ("status", "kind")


@admin.register(UsageCounter)
class UsageCounterAdmin(ReadOnlyAdmin):
    list_display = ("key", "scope", "used", "currency")
    list_filter = ("scope",)


@admin.register(ExchangeRate)
class ExchangeRateAdmin(ReadOnlyAdmin):
    list_display = ("base", "quote", "rate", "valid_on")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "topic", "decision", "created_at", "delivered_at", "attempts")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Integrators' endpoints: editable here, and every change is audited (the secret never is).

    An endpoint disabled after too many consecutive failures shows when and why; saving it active
    again re-enables it (its waiting deliveries then go out).
    """

    list_display = ("name", "url", "active", "consecutive_failures", "disabled_at", "disabled_reason")
    list_filter = ("active",)
    fields = ("name", "url", "secret", "topics", "active", "consecutive_failures", "disabled_at", "disabled_reason")
    readonly_fields = ("consecutive_failures", "disabled_at", "disabled_reason")
    # An address typed without a scheme is taken as https (Django 6's default; 5.2 warned it would change).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: deliveries keep pointing at the endpoint

    def save_model(self, request, obj, form, change):
        # The admin's change form already runs in a transaction: the service joins it.
        webhook_endpoint_save(actor=request.user, endpoint=obj, secret_changed="secret" in form.changed_data)


retry_dead_deliveries = retry_action(
    name="retry_dead_deliveries",
    service=lambda actor, delivery: webhook_delivery_retry(actor=actor, delivery=delivery),
    description="Retry now (dead deliveries: a new round of attempts)",
    done="{count} delivery(ies) will be attempted again now.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Every delivery, dead letters included (filter by status): the retry action goes through the service."""

    list_display = ("id", "message", "endpoint", "status", "attempts", "last_status", "last_error",
                    "last_attempt_at", "next_attempt_at", "delivered_at", "dead_at")
    list_filter = ("status", "endpoint")
    list_select_related = ("message", "endpoint")
    actions = [retry_dead_deliveries]

    def has_retry_permission(self, request):
        return request.user.is_superuser


@admin.register(Delegation)
class DelegationAdmin(ReadOnlyAdmin):
    list_display = ("manager", "delegate", "starts_at", "ends_at", "revoked_at")


@admin.register(ReviewFlag)
class ReviewFlagAdmin(ReadOnlyAdmin):
    list_display = ("decision", "auditor", "severity", "created_at")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("user", "key", "endpoint", "state", "response_status", "created_at")
