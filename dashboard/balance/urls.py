"""The Balance pages' URLs (added to ``dashboard.urls``)."""

from django.urls import URLPattern, path

from . import views

urlpatterns: list[URLPattern] = [
    path("dashboard/balance/", views.balance_overview, name="dashboard-balance"),
    path("dashboard/balance/statement/", views.statement, name="dashboard-balance-statement"),
    path("dashboard/balance/statement.csv", views.statement_csv, name="dashboard-balance-statement-csv"),
    path("dashboard/balance/payouts/", views.payouts_list, name="dashboard-payouts"),
    path("dashboard/balance/payouts/request/", views.payout_request, name="dashboard-payout-request"),
    path("dashboard/balance/payouts/<str:payout_id>/", views.payout_detail, name="dashboard-payout"),
    path("dashboard/balance/settings/", views.payout_settings, name="dashboard-payout-settings"),
]
