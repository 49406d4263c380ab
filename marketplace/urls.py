from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from marketplace.core import views as core_views
from marketplace.core.demo_partner import demo_partner_fulfil

api_v1 = [
    path("", include("marketplace.accounts.urls")),
    path("", include("catalog.urls")),
    path("", include("orders.urls")),
    path("", include("payments.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("demo/partner/fulfil", demo_partner_fulfil, name="demo-partner"),
    path("", include("orders.page_urls")),
    path("", include("payments.page_urls")),
    path("", include("marketplace.core.page_urls")),
]

handler400 = "marketplace.core.api.handler400"
handler404 = "marketplace.core.api.handler404"
handler500 = "marketplace.core.api.handler500"
