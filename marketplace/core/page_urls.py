"""Server-rendered pages of the core: the seller's sign-in and dashboard."""

from django.urls import URLPattern, URLResolver, path

from . import dashboard

urlpatterns: list[URLPattern | URLResolver] = [
    path("accounts/login/", dashboard.LoginView.as_view(), name="login"),
    path("accounts/logout/", dashboard.LogoutView.as_view(), name="logout"),
    path("dashboard/", dashboard.orders_list, name="dashboard"),
    path("dashboard/orders/<str:ref>/", dashboard.order_detail, name="dashboard-order"),
    path("dashboard/orders/<str:ref>/retry-delivery/", dashboard.order_retry, name="dashboard-order-retry"),
    path("dashboard/orders/<str:ref>/refund/", dashboard.order_refund, name="dashboard-order-refund"),
]
