from django.apps import AppConfig


class CheckoutConfig(AppConfig):
    """The checkout use case above orders and payments: quote, pay, initiate, the hosted pages.
    No models."""

    name = "checkout"
    label = "checkout"
    verbose_name = "Checkout"
