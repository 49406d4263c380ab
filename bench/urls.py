"""The app's URLs plus the benchmarks' own endpoint, for ``bench.settings`` only."""

from django.urls import path

from bench.views import InsertOneRowApi
from marketplace.urls import handler404, handler500
from marketplace.urls import urlpatterns as app_urlpatterns

urlpatterns = [path("bench/insert-one-row", InsertOneRowApi.as_view(), name="bench-insert-one-row"), *app_urlpatterns]

__all__ = ["handler404", "handler500", "urlpatterns"]
