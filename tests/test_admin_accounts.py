"""The admin changes accounts, roles, flags and passwords only through audited services, or not at all."""

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import RequestFactory
from django.urls import reverse

from h2h_core.api_tokens import api_token_issue
from h2h_core.audit.verify import verify_chain
from h2h_core.models import ApiToken, AuditEvent, Role
from tests.factories import UserFactory, role, successful_audit_events

pytestmark = pytest.mark.django_db

User = get_user_model()
FLAGS = ("is_active", "is_staff", "is_superuser")

# The admins that may write, each through an audited service (the rest are read-only).
AUDITED_ADMINS = {"auth.user", "authority.webhookendpoint", "authority.grant"}


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def staffer(db):
    """A staff member allowed to manage accounts in the admin, but not a superuser."""
    user = UserFactory(username="staffer", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="auth",
                                                         codename__in=["view_user", "change_user", "add_user"]))
    return user


def account_form(user, **changes) -> dict:
    """Return the admin's user change form as the browser posts it, with `changes` applied."""
    data = {"username": user.username, "first_name": user.first_name, "last_name": user.last_name,
            "email": user.email, "groups": [group.pk for group in user.groups.all()],
            **{flag: getattr(user, flag) for flag in FLAGS},
            # Django's own form edits these too (ours shows them read-only and ignores them)
            "date_joined_0": f"{user.date_joined:%Y-%m-%d}", "date_joined_1": f"{user.date_joined:%H:%M:%S}",
            "last_login_0": "", "last_login_1": ""}
    data.update(changes)
    return {key: ("on" if value is True else value) for key, value in data.items() if value is not False}


def change_url(user) -> str:
    return reverse("admin:auth_user_change", args=[user.pk])


def stored(user) -> tuple:
    user = User.objects.get(pk=user.pk)
    return (*(getattr(user, flag) for flag in FLAGS), sorted(user.groups.values_list("name", flat=True)),
            user.password)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]


def test_the_admin_changes_roles_and_flags_through_audited_services(client, root, alice):
    # given alice is an agent, and root a superuser in the admin
    client.force_login(root)
    manager = role(Role.MANAGER)
    # when root makes her a manager and staff
    response = client.post(change_url(alice), account_form(alice, groups=[manager.pk], is_staff=True))
    # then it is saved, and both changes are on the record with who, before and after
    assert response.status_code == 302
    assert stored(alice)[:4] == (True, True, False, ["Manager"])
    roles = AuditEvent.objects.get(action="user.roles_changed", object_id=str(alice.pk))
    assert (roles.actor_username, roles.before, roles.after) == ("root", ["Agent"], ["Manager"])
    flags = AuditEvent.objects.get(action="user.flags_changed", object_id=str(alice.pk))
    assert flags.actor_username == "root"
    assert flags.before == {"is_active": True, "is_staff": False, "is_superuser": False}
    assert flags.after == {"is_active": True, "is_staff": True, "is_superuser": False}
    assert verify_chain().ok


def test_the_admin_deactivates_a_user_through_the_audited_service(client, root, alice):
    client.force_login(root)
    client.post(change_url(alice), account_form(alice, is_active=False))
    assert stored(alice)[0] is False
    event = AuditEvent.objects.get(action="user.flags_changed", object_id=str(alice.pk))
    assert event.before["is_active"] is True and event.after["is_active"] is False


def test_the_admin_sets_a_password_and_the_audit_log_keeps_neither_it_nor_its_hash(client, root, alice):
    # given root in the admin
    client.force_login(root)
    # when root sets a new password for alice
    response = client.post(reverse("admin:auth_user_password_change", args=[alice.pk]),
                           {"password1": "Correct-horse-42", "password2": "Correct-horse-42",
                            "usable_password": "true"})
    # then it works, and the audit event says that it changed, and nothing more
    assert response.status_code == 302
    assert User.objects.get(pk=alice.pk).check_password("Correct-horse-42")
    event = AuditEvent.objects.get(action="user.password_changed", object_id=str(alice.pk))
    assert event.actor_username == "root" and event.after == {"password": "set"}
    hashed = User.objects.get(pk=alice.pk).password
    for row in AuditEvent.objects.values_list("before", "after", "reason"):
        assert "Correct-horse-42" not in str(row) and hashed not in str(row)
    assert verify_chain().ok


def test_changing_ones_own_password_in_the_admin_is_audited(client, root):
    client.force_login(root)
    response = client.post(reverse("admin:password_change"), {
        "old_password": "h2h-demo", "new_password1": "Another-long-one-7", "new_password2": "Another-long-one-7"})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="user.password_changed", object_id=str(root.pk))
    assert event.actor_username == "root" and "Another-long-one-7" not in str(event.after)


def test_a_superuser_cannot_remove_their_own_superuser_status(client, root):
    # given root, a superuser, on their own account page
    client.force_login(root)
    before, changes = stored(root), successful_audit_events()
    # when root unticks "superuser" and saves
    response = client.post(change_url(root), account_form(root, is_superuser=False), follow=True)
    # then the admin says no in a message, not a 500, and nothing changed
    assert response.status_code == 200
    assert any("Nobody changes their own" in text for text in messages_of(response))
    assert stored(root) == before and successful_audit_events() == changes
    # and the refusal is on the record
    refused = AuditEvent.objects.get(action="user.update.refused", object_id=str(root.pk))
    assert refused.outcome == "denied" and refused.actor_username == "root"
    assert verify_chain().ok


def test_nobody_changes_their_own_roles_in_the_admin(client, staffer):
    client.force_login(staffer)
    before, changes = stored(staffer), successful_audit_events()
    response = client.post(change_url(staffer), account_form(staffer, groups=[role(Role.MANAGER).pk]), follow=True)
    assert response.status_code == 200 and any("own roles" in text for text in messages_of(response))
    assert stored(staffer) == before and successful_audit_events() == changes


def test_a_staff_member_who_is_not_a_superuser_cannot_make_someone_superuser(client, staffer, alice):
    # given a staff member who may change users, but is no superuser
    client.force_login(staffer)
    before, changes = stored(alice), successful_audit_events()
    # when they tick "superuser" (and change alice's e-mail in the same form)
    response = client.post(change_url(alice), account_form(alice, is_superuser=True, email="new@example.test"),
                           follow=True)
    # then it is refused with a message, and nothing at all changed, not even the e-mail
    assert response.status_code == 200
    assert any("Only a superuser" in text for text in messages_of(response))
    assert stored(alice) == before and User.objects.get(pk=alice.pk).email == "alice@example.test"
    assert successful_audit_events() == changes
    assert AuditEvent.objects.filter(action="user.update.refused", object_id=str(alice.pk),
                                     actor_username="staffer", outcome="denied").exists()


def test_a_staff_member_who_is_not_a_superuser_cannot_change_a_superusers_account(client, staffer, root):
    client.force_login(staffer)
    before = stored(root)
    response = client.post(change_url(root), account_form(root, is_active=False), follow=True)
    assert response.status_code == 200 and stored(root) == before
    response = client.post(reverse("admin:auth_user_password_change", args=[root.pk]),
                           {"password1": "Takeover-pass-99", "password2": "Takeover-pass-99",
                            "usable_password": "true"}, follow=True)
    assert response.status_code == 200 and stored(root) == before
    assert AuditEvent.objects.filter(action="user.password_change.refused", object_id=str(root.pk)).exists()


def test_the_admin_adds_a_user_through_the_audited_service(client, root):
    client.force_login(root)
    response = client.post(reverse("admin:auth_user_add"), {
        "username": "newbie", "password1": "Fresh-start-2024", "password2": "Fresh-start-2024",
        "usable_password": "true"})
    assert response.status_code == 302
    newbie = User.objects.get(username="newbie")
    assert not (newbie.is_staff or newbie.is_superuser)
    event = AuditEvent.objects.get(action="user.created", object_id=str(newbie.pk))
    assert event.actor_username == "root" and event.after["password"] == "set"
    assert "Fresh-start-2024" not in str(event.after) and newbie.password not in str(event.after)


def test_users_are_not_deleted_in_the_admin(client, root, alice):
    client.force_login(root)
    assert client.post(reverse("admin:auth_user_delete", args=[alice.pk]), {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=alice.pk).exists()


def test_roles_and_their_permissions_are_read_only_in_the_admin(client, root):
    # given the Manager role
    client.force_login(root)
    manager = role(Role.MANAGER)
    # when root tries to give it a permission, or to add a role
    changed = client.post(reverse("admin:auth_group_change", args=[manager.pk]),
                          {"name": "Manager", "permissions": [Permission.objects.first().pk]})
    added = client.post(reverse("admin:auth_group_add"), {"name": "Sneaky"})
    # then both are refused and nothing changed
    assert changed.status_code == 403 and added.status_code == 403
    assert not manager.permissions.exists() and not Group.objects.filter(name="Sneaky").exists()


def test_every_admin_that_writes_is_one_that_goes_through_audited_services(root):
    # given every model the admin shows, asked as a superuser
    request = RequestFactory().get("/admin/")
    request.user = root
    writable = set()
    for model, model_admin in admin.site._registry.items():
        if (model_admin.has_add_permission(request) or model_admin.has_change_permission(request)
                or model_admin.has_delete_permission(request)):
            writable.add(model._meta.label_lower)
    # then the only ones that write are those whose writes call audited services
    assert writable <= AUDITED_ADMINS, writable - AUDITED_ADMINS


def test_the_token_admin_never_shows_a_key(client, root, alice):
    key = api_token_issue(actor=alice, user=alice).key
    client.force_login(root)
    listing = client.get(reverse("admin:h2h_core_apitoken_changelist"))
    assert listing.status_code == 200 and key not in listing.text and key[:6] in listing.text


def test_the_admin_revokes_api_tokens_through_the_audited_service(client, root, alice):
    # given alice has an API token
    issued = api_token_issue(actor=alice, user=alice)
    client.force_login(root)
    # when root revokes it with the user action
    client.post(reverse("admin:auth_user_changelist"), {"action": "revoke_api_tokens", "_selected_action": [alice.pk]})
    # then it is gone, and the revocation is on the record with the key's first characters only
    assert not ApiToken.objects.filter(user=alice).exists()
    event = AuditEvent.objects.get(action="api_token.revoked", object_id=str(alice.pk))
    assert event.actor_username == "root"
    assert event.before == {"key_prefix": issued.key[:6], "token_id": issued.token.pk}
    assert issued.key not in str(event.before) + str(event.after)
    assert verify_chain().ok


def test_the_admin_unlocks_a_locked_out_username_through_the_audited_service(client, root, alice):
    # given alice's username is locked out after failed logins
    attempt = AccessAttempt.objects.create(username="alice", ip_address="10.0.0.9", user_agent="x",
                                           failures_since_start=5, get_data="", post_data="", http_accept="",
                                           path_info="/login/")
    client.force_login(root)
    # when root unlocks it with the action
    client.post(reverse("admin:axes_accessattempt_changelist"),
                {"action": "unlock_usernames", "_selected_action": [attempt.pk]})
    # then the attempts are gone, and the unlock is on the record
    assert not AccessAttempt.objects.filter(username="alice").exists()
    event = AuditEvent.objects.get(action="auth.lockout_cleared")
    assert event.actor_username == "root" and event.object_id == str(alice.pk)
    assert event.after == {"username": "alice", "attempts": 1}


def test_an_event_records_the_roles_its_actor_holds_after_they_changed(root, alice):
    # given alice's roles were read for a request (access.roles_of keeps them on her user object)
    from h2h_core.access import roles_of
    from h2h_core.audit import audit_record
    from h2h_core.people import user_set_roles

    assert roles_of(alice) == {"Agent"}
    role(Role.MANAGER)
    # when root makes her a manager through the service, and she then acts with that same object
    user_set_roles(actor=root, user=alice, roles=[Role.MANAGER])
    event = audit_record(actor=alice, action="case.noted", object_type="case", object_id=1)
    # then her event names the role she holds now, not the one remembered before the change
    assert event.actor_roles == ["Manager"]
