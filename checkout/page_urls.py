"""The buyer's pages (namespace ``checkout``): the hosted checkout and its success page, and the
library and downloads that the orders app serves."""

from django.urls import path

from orders import views as order_views

from . import views

app_name = "checkout"

urlpatterns = [
    path("c/<slug:slug>", views.checkout_page, name="page"),
    path("c/<slug:slug>/orders/<str:order_id>", views.success_page, name="success"),
    path(
        "c/payments/sslcommerz/<str:payment_id>/<str:outcome>",
        views.sslcommerz_return,
        name="sslcommerz-return",
    ),
    path("c/<slug:slug>/orders/<str:order_id>/gift/resend", views.gift_resend, name="gift-resend"),
    path("gift/<str:token>", views.gift_claim_page, name="gift-claim"),
    path("downloads/<str:token>", order_views.download, name="download"),
    path("library", order_views.library_page, name="library"),
    path("library/signin/<str:token>", order_views.library_signin, name="library-signin"),
    path("library/signout", order_views.library_signout, name="library-signout"),
    path("library/items/<str:item_id>/download", order_views.library_download, name="library-download"),
]
