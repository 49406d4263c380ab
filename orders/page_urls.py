from django.urls import path

from . import views

app_name = "checkout"

urlpatterns = [
    path("c/<slug:slug>", views.checkout_page, name="page"),
    path("c/<slug:slug>/orders/<str:order_id>", views.success_page, name="success"),
    path("downloads/<str:token>", views.download, name="download"),
    path("library", views.library_page, name="library"),
    path("library/signin/<str:token>", views.library_signin, name="library-signin"),
    path("library/signout", views.library_signout, name="library-signout"),
    path("library/items/<str:item_id>/download", views.library_download, name="library-download"),
]
