"""``manage.py seed_demo``: a demo seller, an operator and one active product per delivery type.

Idempotent: a second run finds everything by its email or slug and creates nothing new. It only
puts back what a developer may have broken (the demo passwords, a product's status, a missing
demo file), so the credentials it prints always work.
"""

import os
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from catalog.delivery import new_partner_secret, seal_partner_secret
from catalog.inventory import CodeRow, available_codes, codes_import
from catalog.models import DeliveryType, Product, ProductStatus, Upload, Variant
from marketplace.accounts.models import Role, User

SELLER_EMAIL = "demo@seller.test"
SELLER_NAME = "Demo Seller"
ADMIN_EMAIL = "admin@marketplace.test"
ADMIN_NAME = "Operator"
# Demo-only passwords, for the embedded default on a developer's machine. Override them with
# DEMO_SELLER_PASSWORD / DEMO_ADMIN_PASSWORD; the command refuses to run on production settings.
DEFAULT_SELLER_PASSWORD = "demo-seller-pass-2026"
DEFAULT_ADMIN_PASSWORD = "demo-admin-pass-2026"

DEMO_FILE_NAME = "demo-guide.pdf"


def seller_password() -> str:
    return os.environ.get("DEMO_SELLER_PASSWORD") or DEFAULT_SELLER_PASSWORD


def admin_password() -> str:
    return os.environ.get("DEMO_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD


@dataclass(frozen=True)
class DemoProduct:
    slug: str
    title: str
    description: str
    delivery_type: str
    currency: str
    price: int
    content: str = ""
    redemption_instructions: str = ""
    options: tuple[tuple[str, object], ...] = ()


DEMO_PRODUCTS = [
    DemoProduct(
        slug="demo-text",
        title="Demo Text Product",
        description="A thank-you note with a licence string, shown right after payment.",
        delivery_type=DeliveryType.TEXT,
        currency="USD",
        price=500,
        content="Thank you for your purchase! Your licence: DEMO-1234-ABCD-5678 (not a real licence).",
        redemption_instructions="Paste the licence into the app's About dialog.",
    ),
    DemoProduct(
        slug="demo-link",
        title="Demo Link Product",
        description="Access to an online course.",
        delivery_type=DeliveryType.LINK,
        currency="EUR",
        price=1500,
        content="https://example.com/course",
    ),
    DemoProduct(
        slug="demo-file",
        title="Demo File Product",
        description="A short PDF guide, downloaded through a signed, expiring link.",
        delivery_type=DeliveryType.FILE,
        currency="GBP",
        price=999,
        # The content (the upload's storage key) is filled in when the file is written.
    ),
    DemoProduct(
        slug="demo-gift-card",
        title="Demo Gift Card",
        description="A preloaded gift-card code with a PIN, one per unit, from an encrypted pool.",
        delivery_type=DeliveryType.CODE_POOL,
        currency="USD",
        price=2500,
        redemption_instructions="Redeem at example.com/redeem with the code and PIN.",
    ),
    DemoProduct(
        slug="demo-license",
        title="Demo App Licence",
        description="A licence key generated for you, valid on 2 devices for a year.",
        delivery_type=DeliveryType.LICENSE_KEY,
        currency="USD",
        price=4900,
        redemption_instructions="Enter the key in the app's Activate dialog.",
        options=(("license", {"activation_limit": 2, "expires_in_days": 365, "prefix": "DEMO"}),),
    ),
    DemoProduct(
        slug="demo-game-credits",
        title="Demo Game Credits",
        description="Credits fetched per unit from the seller's own fulfillment service (a demo one built in).",
        delivery_type=DeliveryType.PARTNER_API,
        currency="USD",
        price=999,
        redemption_instructions="Enter the code in the game's shop.",
        # The partner URL and its secret are filled in from SITE_URL when the product is created.
    ),
]

DEMO_POOL_SIZE = 20


def demo_pdf() -> bytes:
    """A one-page PDF saying what it is, built by hand (no PDF library needed)."""
    text = "Marketplace demo guide - thank you for your purchase!"
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode() + b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


class Command(BaseCommand):
    help = "Create (once) a demo seller, an operator superuser and one active product per delivery type."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Seed even with production settings (the demo passwords are public: don't).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings_module = settings.SETTINGS_MODULE or os.environ.get("DJANGO_SETTINGS_MODULE", "")
        if settings_module.endswith(".production") and not options["allow_production"]:
            raise CommandError("seed_demo creates accounts with public passwords; refusing on production settings.")
        created: list[str] = []
        with transaction.atomic():
            seller = self._user(SELLER_EMAIL, SELLER_NAME, seller_password(), superuser=False, created=created)
            self._user(ADMIN_EMAIL, ADMIN_NAME, admin_password(), superuser=True, created=created)
            products = [self._product(seller, demo, created) for demo in DEMO_PRODUCTS]

        write = self.stdout.write
        write(self.style.SUCCESS(f"Demo data ready ({', '.join(created) if created else 'nothing new created'})."))
        write(f"  Seller:   {SELLER_EMAIL} / {seller_password()}   (dashboard: {settings.SITE_URL}/dashboard/)")
        write(f"  Operator: {ADMIN_EMAIL} / {admin_password()}   (admin: {settings.SITE_URL}/admin/)")
        write("  Checkout pages:")
        for product in products:
            write(f"    {settings.SITE_URL}/c/{product.slug}   {product.title} ({product.delivery_type})")

    def _user(self, email: str, name: str, password: str, *, superuser: bool, created: list[str]) -> User:
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            manager = User.objects.create_superuser if superuser else User.objects.create_user
            created.append(email)
            return manager(email=email, password=password, name=name, role=Role.SELLER)
        changed = []
        if not user.check_password(password):
            user.set_password(password)
            changed.append("password")
        wanted = {"role": Role.SELLER, "is_active": True}
        if superuser:
            wanted.update(is_staff=True, is_superuser=True)
        for field, value in wanted.items():
            if getattr(user, field) != value:
                setattr(user, field, value)
                changed.append(field)
        if changed:
            user.save(update_fields=changed)
        return user

    def _product(self, seller: User, demo: DemoProduct, created: list[str]) -> Product:
        product = Product.objects.filter(slug=demo.slug).first()
        if product is None:
            product = Product.objects.create(
                seller=seller,
                slug=demo.slug,
                title=demo.title,
                description=demo.description,
                status=ProductStatus.ACTIVE,
                currency=demo.currency,
                delivery_type=demo.delivery_type,
                delivery_content=demo.content,
                redemption_instructions=demo.redemption_instructions,
                delivery_options=dict(demo.options),
            )
            created.append(demo.slug)
        elif product.status != ProductStatus.ACTIVE:
            product.status = ProductStatus.ACTIVE
            product.save(update_fields=["status", "updated_at"])
        if not product.variants.exists():
            Variant.objects.create(product=product, name="Standard", price=demo.price, stock=None)
        if demo.delivery_type == DeliveryType.FILE:
            self._ensure_file(product, seller)
        if demo.delivery_type == DeliveryType.CODE_POOL:
            self._ensure_codes(product)
        if demo.delivery_type == DeliveryType.PARTNER_API:
            self._ensure_partner(product)
        return product

    def _ensure_partner(self, product: Product) -> None:
        """Points the demo partner product at this site's own demo fulfillment endpoint."""
        partner = dict((product.delivery_options or {}).get("partner") or {})
        url = f"{settings.SITE_URL}/demo/partner/fulfill"
        if partner.get("url") != url or not partner.get("secret"):
            partner = {"url": url, "secret": partner.get("secret") or seal_partner_secret(new_partner_secret())}
            product.delivery_options = {**(product.delivery_options or {}), "partner": partner}
            product.save(update_fields=["delivery_options", "updated_at"])

    def _ensure_codes(self, product: Product) -> None:
        """Keeps the demo pool stocked: tops it up to DEMO_POOL_SIZE available codes."""
        variant = product.variants.first()
        assert variant is not None  # noqa: S101 - created just above
        missing = DEMO_POOL_SIZE - available_codes(variant.id).count()
        if missing > 0:
            rows = [
                CodeRow(i, f"DEMO-GIFT-{secrets.token_hex(4).upper()}", pin=f"{secrets.randbelow(10_000):04d}")
                for i in range(missing)
            ]
            codes_import(variant=variant, rows=rows)

    def _ensure_file(self, product: Product, seller: User) -> None:
        storage = storages["private"]
        upload = Upload.objects.filter(key=product.delivery_content, seller=seller).first()
        if upload is not None and storage.exists(upload.key):
            return
        content = demo_pdf()
        key = storage.save(f"uploads/demo/{DEMO_FILE_NAME}", ContentFile(content))
        if upload is None:
            Upload.objects.create(
                seller=seller, key=key, filename=DEMO_FILE_NAME, size=len(content), content_type="application/pdf"
            )
        else:  # the row survived but the file was wiped (e.g. var/media deleted): write it again
            upload.key = key
            upload.size = len(content)
            upload.save(update_fields=["key", "size"])
        product.delivery_content = key
        product.save(update_fields=["delivery_content", "updated_at"])
