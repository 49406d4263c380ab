from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The embedded default's demo: seed data, the one-command runner and the demo partner."""

    name = "marketplace.demo"
    label = "demo"
    verbose_name = "Demo"
