from django.urls import path

from . import api

app_name = "payments-api"

urlpatterns = [
    path("payments/webhooks/<str:gateway>", api.WebhookApi.as_view(), name="webhook"),
    path("payments/callbacks/bkash", api.BkashCallbackApi.as_view(), name="bkash-callback"),
]
