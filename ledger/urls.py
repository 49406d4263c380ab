from django.urls import path

from . import api

app_name = "ledger-api"

urlpatterns = [
    path("balance", api.BalanceApi.as_view(), name="balance"),
    path("balance/transactions", api.BalanceTransactionListApi.as_view(), name="balance-transactions"),
    path("balance/transactions.csv", api.BalanceTransactionCsvApi.as_view(), name="balance-transactions-csv"),
]
