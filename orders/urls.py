from django.urls import path

from . import analytics_api, api, license_api, webhook_api

app_name = "orders-api"

urlpatterns = [
    path("public/checkout/<slug:slug>", api.CheckoutProductApi.as_view(), name="checkout-product"),
    path("public/checkout/<slug:slug>/quote", api.CheckoutQuoteApi.as_view(), name="checkout-quote"),
    path("public/checkout/<slug:slug>/pay", api.CheckoutPayApi.as_view(), name="checkout-pay"),
    path("public/checkout/<slug:slug>/order/<str:order_id>", api.CheckoutOrderApi.as_view(), name="checkout-order"),
    path("licenses/verify", license_api.LicenseVerifyApi.as_view(), name="license-verify"),
    path("licenses/activate", license_api.LicenseActivateApi.as_view(), name="license-activate"),
    path("licenses/deactivate", license_api.LicenseDeactivateApi.as_view(), name="license-deactivate"),
    path("webhook-endpoints", webhook_api.WebhookEndpointListApi.as_view(), name="webhook-endpoints"),
    path("webhook-endpoints/order-urls", webhook_api.OrderUrlsSecretApi.as_view(), name="webhook-order-urls"),
    path(
        "webhook-endpoints/<str:endpoint_id>",
        webhook_api.WebhookEndpointDetailApi.as_view(),
        name="webhook-endpoint-detail",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/deliveries",
        webhook_api.WebhookDeliveryListApi.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/deliveries/<str:delivery_id>/resend",
        webhook_api.WebhookDeliveryResendApi.as_view(),
        name="webhook-delivery-resend",
    ),
    path("products/<str:product_id>/revenue", analytics_api.ProductRevenueApi.as_view(), name="product-revenue"),
    path("orders", api.OrderListApi.as_view(), name="order-list"),
    # Before "orders/<str:ref>", which would take these names for an order reference.
    path("orders/my-sales", analytics_api.MySalesApi.as_view(), name="order-my-sales"),
    path("orders/my-orders", analytics_api.MyOrdersApi.as_view(), name="order-my-orders"),
    path("orders/export.csv", analytics_api.OrderExportCsvApi.as_view(), name="order-export-csv"),
    path("analytics/daily", analytics_api.AnalyticsDailyApi.as_view(), name="analytics-daily"),
    path("orders/<str:order_id>/resource", api.OrderResourceApi.as_view(), name="order-resource"),
    path("orders/<str:ref>", api.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<str:ref>/status", api.OrderStatusApi.as_view(), name="order-status"),
    path("orders/<str:ref>/delivery", api.OrderDeliveryApi.as_view(), name="order-delivery"),
    path("orders/<str:ref>/refund", api.OrderRefundApi.as_view(), name="order-refund"),
    path("orders/<str:ref>/retry-delivery", api.OrderRetryDeliveryApi.as_view(), name="order-retry-delivery"),
]
