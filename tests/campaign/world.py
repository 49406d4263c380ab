"""Two complete tenants for the campaign's tests: each seller with a product, variants, a code pool,
an order, a discount, a webhook endpoint with a delivery, an API key, an upload and a payout — every kind of
object an id in the API or the dashboard can name."""

import io
import itertools
from dataclasses import dataclass

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.inventory import CodeRow, codes_import
from catalog.models import Code, DeliveryType, Discount, Product, Upload, Variant
from catalog.services import upload_create
from catalog.tests.factories import ProductFactory, VariantFactory
from ledger.models import Payout
from marketplace.accounts.models import APIKey, User
from marketplace.accounts.services import api_key_create
from marketplace.accounts.tests.factories import SellerFactory, UserFactory
from orders import licensing
from orders.models import License, Order, OrderItem, SellerEvent, WebhookDelivery, WebhookEndpoint
from orders.seller_events.endpoints import webhook_endpoint_create
from orders.services import CheckoutLine, order_create

from . import secrets_registry

_serial = itertools.count(1)

# The path parameters (under /api/v1/ and /dashboard/) that ``Tenant.ids`` fills.
ID_PARAMS = (
    "product_id",
    "variant_id",
    "code_id",
    "discount_id",
    "endpoint_id",
    "delivery_id",
    "key_id",
    "ref",
    "order_id",
    "item_id",
    "slug",
    "payout_id",
    "license_id",
)


def jwt_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@dataclass
class Tenant:
    label: str
    seller: User
    buyer: User
    client: APIClient
    api_key: APIKey
    raw_api_key: str
    product: Product
    variant: Variant
    code: Code
    discount: Discount
    endpoint: WebhookEndpoint
    delivery: WebhookDelivery
    upload: Upload
    order: Order
    item: OrderItem
    payout: Payout
    license: License

    def key_client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.raw_api_key}")
        return client

    @property
    def ids(self) -> dict[str, str]:
        """The value for each path parameter name used under /api/v1/ and /dashboard/."""
        ids = {
            "product_id": self.product.id,
            "variant_id": self.variant.id,
            "code_id": self.code.id,
            "discount_id": self.discount.id,
            "endpoint_id": self.endpoint.id,
            "delivery_id": self.delivery.id,
            "key_id": self.api_key.id,
            "ref": self.order.id,
            "order_id": self.order.id,
            "item_id": self.item.id,
            "slug": self.product.slug,
            "payout_id": self.payout.id,
            "license_id": self.license.id,
        }
        assert set(ids) == set(ID_PARAMS)
        return ids


def build_tenant(label: str) -> Tenant:
    n = next(_serial)
    seller = SellerFactory(name=f"{label} shop", email=f"{label.lower()}-{n}@seller.test")
    buyer = UserFactory(email=f"{label.lower()}-{n}@buyer.test")
    key, raw = api_key_create(user=seller, name=f"{label} key")
    product = ProductFactory(
        seller=seller,
        slug=f"{label.lower()}-gift-{n}",
        title=f"{label} gift card",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
    )
    variant = VariantFactory(product=product, name="$25", price=2500)
    rows = [CodeRow(i, f"{label.upper()}-{n}-CODE-{i:04d}-SECRET", pin=f"{n}{i:03d}77") for i in range(1, 4)]
    codes_import(variant=variant, rows=rows)
    order = order_create(
        product=product, buyer_email=buyer.email, lines=[CheckoutLine(variant.id, 1)], buyer=buyer
    ).order
    item = order.items.get()
    code = Code.objects.filter(variant=variant, status="AVAILABLE").first()
    assert code is not None
    discount = Discount.objects.create(seller=seller, code=f"{label.upper()}{n}OFF", kind="percent", value=10)
    endpoint = webhook_endpoint_create(seller=seller, url=f"https://hooks.{label.lower()}.test/in", events=[])
    event = SellerEvent.objects.create(seller=seller, type="order.created", data={"order_id": order.id})
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, url=endpoint.url, event=event, webhook_id=f"msg_{label}{n}", body="{}", status="failed"
    )
    upload = upload_create(
        seller=seller,
        file=SimpleUploadedFile(f"{label.lower()}.pdf", b"%PDF-1.4 " + label.encode(), content_type="application/pdf"),
    )
    # A payout row only (its books are not the point here): an id another seller must not reach.
    payout = Payout.objects.create(seller=seller, amount=1000, currency="USD", method="bank_transfer")
    # A licence key on the order's item, issued as a sale issues it: an id another seller must not reach.
    [license] = licensing.licenses_issue(item=item, options={"activation_limit": 2})
    secrets_registry.register(raw, kind="api key")
    secrets_registry.register(license.key, kind="license key")
    return Tenant(
        label=label,
        seller=seller,
        buyer=buyer,
        client=jwt_client(seller),
        api_key=key,
        raw_api_key=raw,
        product=product,
        variant=variant,
        code=code,
        discount=discount,
        endpoint=endpoint,
        delivery=delivery,
        upload=upload,
        order=order,
        item=item,
        payout=payout,
        license=license,
    )


def csv_file(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())
