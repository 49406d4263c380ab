from django.urls import path

from . import api

app_name = "payments-api"

urlpatterns = [
    path("payments/webhooks/<str:gateway>", api.WebhookApi.as_view(), name="webhook"),
]
