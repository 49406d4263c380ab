from django.urls import path

from . import api

app_name = "payments-api"

urlpatterns = [
    # Before the gateways' pattern, which would take "stripe-connect" for a gateway's name.
    path("payments/webhooks/stripe-connect", api.ConnectWebhookApi.as_view(), name="webhook-stripe-connect"),
    path("payments/webhooks/<str:gateway>", api.WebhookApi.as_view(), name="webhook"),
    path("payments/callbacks/bkash", api.BkashCallbackApi.as_view(), name="bkash-callback"),
]
