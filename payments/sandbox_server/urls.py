from django.urls import path

from . import views

app_name = "sandbox"

urlpatterns = [
    path("sandbox/pay/<str:payment_id>", views.sandbox_pay, name="pay"),
    path("sandbox/api/payments/<str:payment_id>", views.sandbox_payment_api, name="api-payment"),
]
