from django.urls import path

from . import views

app_name = "checkout"

urlpatterns = [
    path("c/<slug:slug>", views.checkout_page, name="page"),
    path("c/<slug:slug>/orders/<str:order_id>", views.success_page, name="success"),
    path("downloads/<str:token>", views.download, name="download"),
]
