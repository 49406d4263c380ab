"""The seller's pages: sign-in, sign-up, password reset and the dashboard. URL names are the same as
they were when these pages lived in the core."""

from django.urls import URLPattern, URLResolver, path

from dashboard import auth
from dashboard import stripe_connect as dashboard_stripe_connect
from dashboard.account import settings as dashboard_settings
from dashboard.account import views as dashboard_accounts
from dashboard.analytics import views as dashboard_analytics
from dashboard.balance import urls as dashboard_balance
from dashboard.catalog import partner_test as dashboard_partner_test
from dashboard.catalog import views as dashboard_catalog
from dashboard.customers import views as dashboard_customers
from dashboard.licenses import views as dashboard_licenses
from dashboard.orders import views as dashboard
from dashboard.webhooks import views as dashboard_webhooks

urlpatterns: list[URLPattern | URLResolver] = [
    path("accounts/login/", auth.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", dashboard_accounts.signup, name="signup"),
    path("accounts/password-reset/", dashboard_accounts.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password-reset/sent/", dashboard_accounts.PasswordResetDoneView.as_view(), name="password_reset_done"
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        dashboard_accounts.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/", dashboard_accounts.PasswordResetCompleteView.as_view(), name="password_reset_complete"
    ),
    path("dashboard/", dashboard.orders_list, name="dashboard"),
    path("dashboard/analytics/", dashboard_analytics.analytics, name="dashboard-analytics"),
    path("dashboard/customers/", dashboard_customers.customers, name="dashboard-customers"),
    path("dashboard/customers/export.csv", dashboard_customers.customers_export, name="dashboard-customers-export"),
    path("dashboard/products/", dashboard_catalog.products_list, name="dashboard-products"),
    path("dashboard/products/new/", dashboard_catalog.product_new, name="dashboard-product-new"),
    path("dashboard/products/<str:product_id>/edit/", dashboard_catalog.product_edit, name="dashboard-product-edit"),
    path(
        "dashboard/products/<str:product_id>/archive/",
        dashboard_catalog.product_archive,
        name="dashboard-product-archive",
    ),
    path(
        "dashboard/products/<str:product_id>/partner-test/",
        dashboard_partner_test.partner_test,
        name="dashboard-partner-test",
    ),
    path("dashboard/uploads/", dashboard_catalog.upload, name="dashboard-upload"),
    path(
        "dashboard/products/<str:product_id>/variants/<str:variant_id>/codes/",
        dashboard_catalog.codes,
        name="dashboard-codes",
    ),
    path(
        "dashboard/products/<str:product_id>/variants/<str:variant_id>/codes/upload/",
        dashboard_catalog.codes_upload,
        name="dashboard-codes-upload",
    ),
    path(
        "dashboard/products/<str:product_id>/variants/<str:variant_id>/codes/<str:code_id>/<str:action>/",
        dashboard_catalog.code_action,
        name="dashboard-code-action",
    ),
    path("dashboard/products/<str:product_id>/licenses/", dashboard_licenses.licenses, name="dashboard-licenses"),
    *(
        path(
            f"dashboard/products/<str:product_id>/licenses/<str:license_id>/{action}/",
            dashboard_licenses.license_action,
            {"action": action},
            name=f"dashboard-license-{action}",
        )
        for action in ("disable", "enable", "reset")
    ),
    path("dashboard/orders/<str:ref>/", dashboard.order_detail, name="dashboard-order"),
    path("dashboard/orders/<str:ref>/retry-delivery/", dashboard.order_retry, name="dashboard-order-retry"),
    path(
        "dashboard/orders/<str:ref>/resend-receipt/",
        dashboard.order_resend_receipt,
        name="dashboard-order-resend-receipt",
    ),
    path("dashboard/orders/<str:ref>/refund/", dashboard.order_refund, name="dashboard-order-refund"),
    path("dashboard/orders/<str:ref>/gift/", dashboard.order_gift, name="dashboard-order-gift"),
    path("dashboard/orders/<str:ref>/status/", dashboard.order_change_status, name="dashboard-order-status"),
    path(
        "dashboard/orders/<str:ref>/delivery/",
        dashboard.order_override_delivery,
        name="dashboard-order-delivery",
    ),
]
urlpatterns += dashboard_settings.urlpatterns
urlpatterns += dashboard_balance.urlpatterns
urlpatterns += dashboard_stripe_connect.urlpatterns
urlpatterns += [
    path("dashboard/settings/webhooks/", dashboard_webhooks.webhooks_list, name="dashboard-webhooks"),
    path(
        "dashboard/settings/webhooks/order-urls/roll/",
        dashboard_webhooks.order_urls_secret_roll,
        name="dashboard-order-urls-roll",
    ),
    path("dashboard/settings/webhooks/<str:endpoint_id>/", dashboard_webhooks.webhook_detail, name="dashboard-webhook"),
    path(
        "dashboard/settings/webhooks/<str:endpoint_id>/active/",
        dashboard_webhooks.webhook_set_active,
        name="dashboard-webhook-active",
    ),
    path(
        "dashboard/settings/webhooks/<str:endpoint_id>/test/",
        dashboard_webhooks.webhook_test,
        name="dashboard-webhook-test",
    ),
    path(
        "dashboard/settings/webhooks/<str:endpoint_id>/delete/",
        dashboard_webhooks.webhook_delete,
        name="dashboard-webhook-delete",
    ),
    path(
        "dashboard/settings/webhooks/<str:endpoint_id>/deliveries/<str:delivery_id>/resend/",
        dashboard_webhooks.webhook_delivery_resend,
        name="dashboard-webhook-resend",
    ),
]
