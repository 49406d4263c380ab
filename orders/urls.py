from django.urls import path

from . import analytics_api, api, license_api
from .seller_events import api as seller_events_api

app_name = "orders-api"

urlpatterns = [
    path("licenses/verify", license_api.LicenseVerifyApi.as_view(), name="license-verify"),
    path("licenses/activate", license_api.LicenseActivateApi.as_view(), name="license-activate"),
    path("licenses/deactivate", license_api.LicenseDeactivateApi.as_view(), name="license-deactivate"),
    path("licenses", license_api.LicenseListApi.as_view(), name="license-list"),
    path("licenses/<str:license_id>", license_api.LicenseDetailApi.as_view(), name="license-detail"),
    path("licenses/<str:license_id>/disable", license_api.LicenseDisableApi.as_view(), name="license-disable"),
    path("licenses/<str:license_id>/enable", license_api.LicenseEnableApi.as_view(), name="license-enable"),
    path(
        "licenses/<str:license_id>/reset-activations",
        license_api.LicenseResetActivationsApi.as_view(),
        name="license-reset-activations",
    ),
    path("webhook-endpoints", seller_events_api.WebhookEndpointListApi.as_view(), name="webhook-endpoints"),
    path("webhook-endpoints/order-urls", seller_events_api.OrderUrlsSecretApi.as_view(), name="webhook-order-urls"),
    path(
        "webhook-endpoints/<str:endpoint_id>",
        seller_events_api.WebhookEndpointDetailApi.as_view(),
        name="webhook-endpoint-detail",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/test",
        seller_events_api.WebhookEndpointTestApi.as_view(),
        name="webhook-endpoint-test",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/deliveries",
        seller_events_api.WebhookDeliveryListApi.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/deliveries/<str:delivery_id>/resend",
        seller_events_api.WebhookDeliveryResendApi.as_view(),
        name="webhook-delivery-resend",
    ),
    path("products/<str:product_id>/revenue", analytics_api.ProductRevenueApi.as_view(), name="product-revenue"),
    # "orders" (GET the list, POST an order) is routed in checkout.urls: creating an order is checkout's.
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
    path("orders/<str:ref>/resend-receipt", api.OrderResendReceiptApi.as_view(), name="order-resend-receipt"),
    path("orders/<str:ref>/retry-delivery", api.OrderRetryDeliveryApi.as_view(), name="order-retry-delivery"),
    path("orders/<str:ref>/gift", api.OrderGiftApi.as_view(), name="order-gift"),
    path("orders/<str:ref>/gift/send", api.OrderGiftSendApi.as_view(), name="order-gift-send"),
]
