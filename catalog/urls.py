from django.urls import URLPattern, URLResolver, path

from . import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("products", api.ProductListApi.as_view(), name="products"),
    path("products/<str:product_id>", api.ProductDetailApi.as_view(), name="product-detail"),
    path("uploads", api.UploadApi.as_view(), name="uploads"),
    path("discounts", api.DiscountListApi.as_view(), name="discounts"),
    # Before "discounts/<str:discount_id>", which would read "validate" as a discount id.
    path("discounts/validate", api.DiscountValidateApi.as_view(), name="discount-validate"),
    path("public/products", api.PublicProductListApi.as_view(), name="public-products"),
    path("discounts/<str:discount_id>", api.DiscountDetailApi.as_view(), name="discount-detail"),
    path("products/<str:product_id>/variants/<str:variant_id>/codes", api.CodeListApi.as_view(), name="codes"),
    path(
        "products/<str:product_id>/variants/<str:variant_id>/codes/<str:code_id>/<str:action>",
        api.CodeActionApi.as_view(),
        name="code-action",
    ),
]
