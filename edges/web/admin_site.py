"""The admin site: Django's, with its "change my password" page writing through the audited service.

Installed in place of `django.contrib.admin` (INSTALLED_APPS names `H2HAdminConfig`, whose
`default_site` is the site below), the documented way to customise the default site: every
`admin.register` and `admin.site` keep working. What the site shows is registered in `edges.admin`.
This module is imported while the settings load, so it imports forms and models only when used.
"""

from __future__ import annotations

from functools import cache

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


@cache
def own_password_change_form():
    """Return the admin's own-password form, saving through `user_set_password` (the old password is checked)."""
    from django.contrib.admin.forms import AdminPasswordChangeForm

    from h2h_core.people import user_set_password

    class AuditedOwnPasswordChangeForm(AdminPasswordChangeForm):
        def save(self, commit=True):
            user_set_password(actor=self.user, user=self.user, password=self.cleaned_data["new_password1"])
            return self.user

    return AuditedOwnPasswordChangeForm


class H2HAdminSite(admin.AdminSite):
    def password_change(self, request, extra_context=None):
        from django.contrib.auth.views import PasswordChangeView
        from django.urls import reverse

        defaults = {
            "form_class": own_password_change_form(),
            "success_url": reverse("admin:password_change_done", current_app=self.name),
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        return PasswordChangeView.as_view(**defaults)(request)


class H2HAdminConfig(AdminConfig):
    default_site = "edges.web.admin_site.H2HAdminSite"
