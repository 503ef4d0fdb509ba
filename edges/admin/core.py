from django.contrib import admin

from edges.admin.base import ReadOnlyAdmin, retry_action
from h2h_core.mail import outbound_mail_retry
from h2h_core.models import (
    AiAgent,
    AuditCheckpoint,
    AuditEvent,
    AuditHead,
    Case,
    CaseEvent,
    Customer,
    Organisation,
    OutboundMail,
    Team,
)


@admin.register(Organisation)
class OrganisationAdmin(ReadOnlyAdmin):
    list_display = ("name", "base_currency", "time_zone")


@admin.register(Team)
class TeamAdmin(ReadOnlyAdmin):
    list_display = ("name", "slug")
    filter_horizontal = ("members",)


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ("name", "tier", "annual_value", "customer_since")
    list_filter = ("tier",)
    search_fields = ("name",)


class CaseEventInline(admin.TabularInline):
    model = CaseEvent
    extra = 0
    fields = ("at", "kind", "actor", "text")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ("reference", "subject", "customer", "category", "status", "owner", "team", "stakes_score",
                    "resolution_due", "sla_breached")
    list_filter = ("status", "category", "team", "sla_breached")
    search_fields = ("subject", "customer__name")
    list_select_related = ("customer", "owner", "team")
    inlines = [CaseEventInline]


@admin.register(AiAgent)
class AiAgentAdmin(ReadOnlyAdmin):
    """Read-only: AI agents are registered, changed and suspended in the manager console (audited services)."""

    list_display = ("user", "team", "model_name", "model_version", "max_stakes", "min_confidence",
                    "registered_at", "suspended_at")
    list_filter = ("team", "model_name")
    search_fields = ("user__username", "model_name", "model_version")
    list_select_related = ("user", "team")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "occurred_at", "actor_username", "action", "object_type", "object_id", "outcome")
    list_filter = ("outcome", "object_type")
    search_fields = ("action", "actor_username", "object_id")


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("seq", "hash", "signed_at", "key_fingerprint")


@admin.register(AuditHead)
class AuditHeadAdmin(ReadOnlyAdmin):
    list_display = ("seq", "hash")


retry_failed_mail = retry_action(
    name="retry_failed_mail",
    service=lambda actor, mail: outbound_mail_retry(actor=actor, mail=mail),
    description="Retry (failed mail: a new round of attempts)", done="{count} mail(s) will be sent again now.")


@admin.register(OutboundMail)
class OutboundMailAdmin(ReadOnlyAdmin):
    """Mail queued by the services: what was sent, what is pending, what failed (and why)."""

    list_display = ("id", "purpose", "subject", "case", "status", "attempts", "last_error", "created_at",
                    "sent_at", "failed_at")
    list_filter = ("status", "purpose")
    list_select_related = ("case",)
    actions = [retry_failed_mail]

    def has_retry_permission(self, request):
        return request.user.is_superuser
