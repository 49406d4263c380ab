import factory

from catalog.models import DeliveryType, Product, ProductStatus, Variant
from marketplace.accounts.tests.factories import SellerFactory


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    seller = factory.SubFactory(SellerFactory)
    slug = factory.Sequence(lambda n: f"product-{n}")
    title = factory.Sequence(lambda n: f"Product {n}")
    description = "A digital product."
    status = ProductStatus.ACTIVE
    currency = "USD"
    delivery_type = DeliveryType.TEXT
    delivery_content = "Thanks for buying! Your secret is: OPEN-SESAME"


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    product = factory.SubFactory(ProductFactory)
    name = "Standard"
    price = 1999
