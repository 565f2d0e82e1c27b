from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """Erasure (the right to be forgotten, by crypto-shredding), retention and export (the right of access)."""

    name = "privacy"
    verbose_name = "Privacy"
