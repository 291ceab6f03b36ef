"""The admin app, with the platform's own site as its default (see admin_site)."""

from django.contrib.admin.apps import AdminConfig


class PlatformAdminConfig(AdminConfig):
    """django.contrib.admin whose ``admin.site`` is the governance platform's site."""

    default_site = "telemetry_platform.admin_site.PlatformAdminSite"
