from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from marketplace.core import views as core_views
from marketplace.core.api_docs import RedocView, redoc_bundle
from marketplace.demo.partner import demo_partner_fulfill

api_v1 = [
    path("", include("marketplace.accounts.urls")),
    path("", include("catalog.urls")),
    path("", include("checkout.urls")),
    path("", include("orders.urls")),
    path("", include("ledger.urls")),
    path("", include("payments.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file of its own (?script), not inline:
    # the Content-Security-Policy runs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/redoc/redoc.standalone.js", redoc_bundle, name="api-redoc-bundle"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("demo/partner/fulfill", demo_partner_fulfill, name="demo-partner"),
    path("", include("checkout.page_urls")),
    path("", include("checkout.store_urls")),
    path("", include("payments.sandbox_server.urls")),
    path("", include("dashboard.urls")),
]

handler400 = "marketplace.core.api.handler400"
handler404 = "marketplace.core.api.handler404"
handler500 = "marketplace.core.api.handler500"
