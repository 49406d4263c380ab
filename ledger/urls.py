from django.urls import path

from . import api

app_name = "ledger-api"

urlpatterns = [
    path("balance", api.BalanceApi.as_view(), name="balance"),
    path("balance/transactions", api.BalanceTransactionListApi.as_view(), name="balance-transactions"),
    path("balance/transactions.csv", api.BalanceTransactionCsvApi.as_view(), name="balance-transactions-csv"),
    path("payouts", api.PayoutListApi.as_view(), name="payouts"),
    path("payouts/<str:payout_id>", api.PayoutDetailApi.as_view(), name="payout"),
    path("payout-settings", api.PayoutSettingsApi.as_view(), name="payout-settings"),
]
