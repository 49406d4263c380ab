from django.urls import path

from . import api

app_name = "checkout-api"

urlpatterns = [
    path("public/checkout/<slug:slug>", api.CheckoutProductApi.as_view(), name="product"),
    path("public/checkout/<slug:slug>/quote", api.CheckoutQuoteApi.as_view(), name="quote"),
    path("public/checkout/<slug:slug>/pay", api.CheckoutPayApi.as_view(), name="pay"),
    path("public/checkout/<slug:slug>/order/<str:order_id>", api.CheckoutOrderApi.as_view(), name="order"),
    # GET lists orders (``orders.api.OrderListApi``); POST makes one through the checkout's services.
    path("orders", api.OrderCollectionApi.as_view(), name="order-list"),
    path(
        "public/checkout/<slug:slug>/order/<str:order_id>/gift/resend",
        api.CheckoutGiftResendApi.as_view(),
        name="gift-resend",
    ),
    path("payments/initiate/<str:order_id>", api.PaymentInitiateApi.as_view(), name="initiate"),
]
