from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from marketplace.core.views import readiness_fact_register

        from . import checks  # noqa: F401 - registers the deploy check for the sandbox in production
        from .sandbox_server.server import sandbox_in_production

        readiness_fact_register("sandbox_in_production", sandbox_in_production)
