"""App configuration for privacy."""

from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"

    def ready(self) -> None:
        """Install the suppression list as governance's port (the plan cache reads it)."""
        from governance.ports import ports_install

        from .selectors import suppressed_subject_hashes

        ports_install(suppressed_subject_hashes=suppressed_subject_hashes)
