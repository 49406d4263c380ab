from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The seller's pages: one sub-package per domain, no models (django-oscar's dashboard)."""

    name = "dashboard"
    label = "dashboard"
    verbose_name = "Seller dashboard"
