"""The store pages (namespace ``store``): the front page, a seller's store, public media."""

from django.urls import path

from . import store_views

app_name = "store"

urlpatterns = [
    path("", store_views.front_page, name="front"),
    path("s/<slug:seller_slug>", store_views.store_page, name="store"),
    path("media/<path:path>", store_views.public_media, name="media"),
]
