from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the deploy check for the sandbox in production
