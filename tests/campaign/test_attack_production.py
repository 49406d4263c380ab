"""Issue 10, items 1 and 13: the sandbox gateway on production settings, the published secrets, and
the embedded default's email.

A buyer on a real shop "paid" on ``/sandbox/pay/<id>`` by choosing *succeeded* and got real codes.
Production settings now refuse to start with the sandbox enabled unless ``SANDBOX_IN_PRODUCTION=true``
says so on purpose; with Stripe configured and nothing else said, Stripe is the only gateway; the
default gateway must be an enabled one; and no secret the repository publishes for the embedded default
is accepted. Where the sandbox is not enabled its pages and API do not exist and ``payment_method:
"sandbox"`` is a 400. Where it runs on purpose, every sandbox page and every email of a sandbox-paid
order says that no money moves, ``check --deploy`` warns and ``/readyz`` says so.

The production cases start a fresh interpreter with a crafted environment, the way a container starts
(the helpers of ``marketplace/core/tests/test_settings_production.py``).
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from marketplace.core.tests.test_settings_production import BASE_DIR, SETUP, production_env, run
from marketplace.settings import embedded_secrets
from orders.models import Order
from payments.models import Payment, SandboxPayment

STRIPE_ONLY = {
    "ENABLED_PAYMENT_GATEWAYS": ["stripe"],
    "DEFAULT_PAYMENT_GATEWAY": "stripe",
    "STRIPE_SECRET_KEY": "sk_test_campaign",
    "STRIPE_WEBHOOK_SECRET": "whsec_campaign",
}

# --- production settings, in a fresh interpreter -------------------------------------------------

# Production settings with Stripe configured and nothing else said, asked from inside the app: the
# gateways, the sandbox's page and status API, its webhook, and a checkout's payment_method.
STRIPE_PRODUCTION_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from marketplace.core.errors import ValidationFailed
from payments.gateways import available_gateways, get_gateway

client = Client(HTTP_HOST="shop.example.com")
page = client.get("/sandbox/pay/pay_0123456789abcdefghijklmnop", secure=True)
paid = client.post("/sandbox/pay/pay_0123456789abcdefghijklmnop", {"outcome": "succeeded"}, secure=True)
status_api = client.get("/sandbox/api/payments/pay_0123456789abcdefghijklmnop", secure=True,
                        HTTP_AUTHORIZATION="Bearer " + settings.SANDBOX_WEBHOOK_SECRET)
webhook = client.post("/api/v1/payments/webhooks/sandbox", b"{}", content_type="application/json", secure=True)
try:
    get_gateway("sandbox")
    refused = None
except ValidationFailed as exc:
    refused = {"status": exc.status_code, "code": exc.code, "fields": exc.fields}
print(json.dumps({
    "enabled": settings.ENABLED_PAYMENT_GATEWAYS,
    "available": available_gateways(),
    "default": settings.DEFAULT_PAYMENT_GATEWAY,
    "page": page.status_code,
    "paid": paid.status_code,
    "status_api": [status_api.status_code, status_api.json()],
    "webhook": [webhook.status_code, webhook.json()],
    "refused": refused,
}))
"""


def test_production_with_stripe_enables_only_stripe_and_the_sandbox_does_not_exist() -> None:
    result = run([sys.executable, "-c", STRIPE_PRODUCTION_PROBE], production_env())

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["enabled"] == ["stripe"]
    assert seen["available"] == ["stripe"]
    assert seen["default"] == "stripe"
    assert seen["page"] == 404
    assert seen["paid"] == 404
    assert seen["status_api"] == [404, {"success": False, "error": {"code": "not_found", "message": "Not found."}}]
    assert seen["webhook"][0] == 404
    assert seen["webhook"][1]["error"]["code"] == "unknown_gateway"
    assert seen["refused"] == {
        "status": 400,
        "code": "validation_error",
        "fields": {"payment_method": ["Must be one of: stripe."]},
    }


REFUSE_SANDBOX = "The sandbox gateway is enabled"
PUBLISHED = "holds a secret the repository publishes for the embedded default"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # The old default: the sandbox beside Stripe.
        pytest.param({"ENABLED_PAYMENT_GATEWAYS": "sandbox,stripe"}, REFUSE_SANDBOX, id="sandbox-beside-stripe"),
        # No gateway configured at all: the sandbox would be the default.
        pytest.param(
            {"STRIPE_SECRET_KEY": None, "STRIPE_WEBHOOK_SECRET": None, "SANDBOX_WEBHOOK_SECRET": "whsec_b3duLXNlY3Jl"},
            REFUSE_SANDBOX,
            id="sandbox-as-the-only-gateway",
        ),
        pytest.param(
            {"ENABLED_PAYMENT_GATEWAYS": "sandbox,stripe", "SANDBOX_IN_PRODUCTION": "false"},
            REFUSE_SANDBOX,
            id="sandbox-flag-false",
        ),
        pytest.param(
            {"DEFAULT_PAYMENT_GATEWAY": "sandbox"},
            "DEFAULT_PAYMENT_GATEWAY='sandbox' is not enabled (ENABLED_PAYMENT_GATEWAYS: stripe)",
            id="default-not-enabled",
        ),
        pytest.param(
            {"DEFAULT_PAYMENT_GATEWAY": "paypal"},
            "DEFAULT_PAYMENT_GATEWAY='paypal' is not enabled",
            id="default-unknown",
        ),
        pytest.param({"ENABLED_PAYMENT_GATEWAYS": ","}, "ENABLED_PAYMENT_GATEWAYS names no gateway", id="no-gateway"),
        pytest.param({"SECRET_KEY": embedded_secrets.SECRET_KEY}, "SECRET_KEY", id="published-secret-key"),
        pytest.param(
            {"SECRET_KEY_FALLBACKS": embedded_secrets.SECRET_KEY},
            f"SECRET_KEY_FALLBACKS {PUBLISHED}",
            id="published-secret-key-as-fallback",
        ),
        pytest.param(
            {"FERNET_KEYS": embedded_secrets.FERNET_KEYS[0]}, f"FERNET_KEYS {PUBLISHED}", id="published-fernet-key"
        ),
        pytest.param(
            {"FERNET_KEYS": f"{production_env()['FERNET_KEYS'].split(',')[0]},{embedded_secrets.FERNET_KEYS[0]}"},
            f"FERNET_KEYS {PUBLISHED}",
            id="published-fernet-key-as-an-old-key",
        ),
        pytest.param(
            {"CODE_HASH_KEY": embedded_secrets.CODE_HASH_KEY}, f"CODE_HASH_KEY {PUBLISHED}", id="published-code-hash"
        ),
        pytest.param(
            {
                "ENABLED_PAYMENT_GATEWAYS": "stripe,sandbox",
                "SANDBOX_IN_PRODUCTION": "true",
                "SANDBOX_WEBHOOK_SECRET": embedded_secrets.SANDBOX_WEBHOOK_SECRET,
            },
            f"SANDBOX_WEBHOOK_SECRET {PUBLISHED}",
            id="published-sandbox-webhook-secret",
        ),
        pytest.param(
            {"STRIPE_WEBHOOK_SECRET": embedded_secrets.SANDBOX_WEBHOOK_SECRET}, PUBLISHED, id="published-as-stripe"
        ),
    ],
)
def test_production_refuses_to_start(overrides: dict[str, str | None], message: str) -> None:
    result = run([sys.executable, "-c", SETUP], production_env(**overrides))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_every_published_secret_is_refused() -> None:
    """The list production refuses is the embedded default's own: every value local.py falls back to."""
    probe = (
        "import json; from marketplace.settings import local; "
        "print(json.dumps([local.SECRET_KEY, *local.FERNET_KEYS, local.CODE_HASH_KEY, local.SANDBOX_WEBHOOK_SECRET]))"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "VAR_DIR": str(BASE_DIR / "var")}
    result = run([sys.executable, "-c", probe], env)

    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == embedded_secrets.PUBLISHED_VALUES


SANDBOX_ON_PURPOSE = {
    "ENABLED_PAYMENT_GATEWAYS": "sandbox",
    "SANDBOX_IN_PRODUCTION": "true",
    "STRIPE_SECRET_KEY": None,
    "STRIPE_WEBHOOK_SECRET": None,
    "SANDBOX_WEBHOOK_SECRET": "whsec_c2FuZGJveC1vbi1wdXJwb3NlLWZvci1hLWRlbW8=",
}


def test_sandbox_on_purpose_starts_and_check_deploy_warns() -> None:
    result = run([sys.executable, "manage.py", "check", "--deploy"], production_env(**SANDBOX_ON_PURPOSE))
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    assert "(payments.W001) The sandbox payment gateway is enabled (SANDBOX_IN_PRODUCTION=true)" in output
    assert "no money moves" in output
    assert "System check identified 1 issue (0 silenced)." in output


def test_check_deploy_with_stripe_does_not_warn_about_the_sandbox() -> None:
    result = run([sys.executable, "manage.py", "check", "--deploy"], production_env())
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    assert "payments.W001" not in output
    assert "System check identified no issues" in output


# --- the sandbox where it is not enabled ----------------------------------------------------------


@pytest.fixture
def product(db: Any) -> Any:
    product = ProductFactory(
        seller=SellerFactory(name="Real Money Shop"),
        slug="real-money",
        title="Real money",
        currency="USD",
        delivery_content="The secret is REAL-GOODS-0001",
    )
    VariantFactory(product=product, name="Standard", price=1999)
    return product


def _sandbox_checkout(product: Any) -> tuple[dict[str, Any], str]:
    """A pending order with an open sandbox payment, made while the sandbox was enabled."""
    response = APIClient().post(
        f"/api/v1/public/checkout/{product.slug}/pay", {"buyer_email": "buyer@example.com"}, format="json"
    )
    assert response.status_code == 201, response.json()
    order = response.json()["data"]
    return order, order["payment"]["id"]


@pytest.mark.django_db
def test_without_the_sandbox_its_pages_and_api_are_404_and_change_nothing(
    product: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    order, payment_id = _sandbox_checkout(product)
    for name, value in STRIPE_ONLY.items():
        setattr(settings, name, value)
    client = Client()

    page = client.get(f"/sandbox/pay/{payment_id}")
    with django_capture_on_commit_callbacks(execute=True):
        paid = client.post(f"/sandbox/pay/{payment_id}", {"outcome": "succeeded"})
    status_api = client.get(
        f"/sandbox/api/payments/{payment_id}", HTTP_AUTHORIZATION=f"Bearer {settings.SANDBOX_WEBHOOK_SECRET}"
    )

    assert page.status_code == 404
    assert paid.status_code == 404
    assert status_api.status_code == 404
    assert status_api.json() == {"success": False, "error": {"code": "not_found", "message": "Not found."}}
    assert SandboxPayment.objects.get(id=payment_id).status == "requires_payment"
    assert Order.objects.get(id=order["id"]).status == "pending"
    assert Payment.objects.get(id=payment_id).status == "pending"
    assert mail.outbox == []


@pytest.mark.django_db
def test_without_the_sandbox_payment_method_sandbox_is_a_400_and_creates_nothing(product: Any, settings: Any) -> None:
    for name, value in STRIPE_ONLY.items():
        setattr(settings, name, value)
    before = (Order.objects.count(), Payment.objects.count(), SandboxPayment.objects.count())

    response = APIClient().post(
        f"/api/v1/public/checkout/{product.slug}/pay",
        {"buyer_email": "buyer@example.com", "payment_method": "sandbox"},
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["fields"] == {"payment_method": ["Must be one of: stripe."]}
    assert (Order.objects.count(), Payment.objects.count(), SandboxPayment.objects.count()) == before


@pytest.mark.django_db
def test_without_the_sandbox_initiate_with_sandbox_is_a_400(product: Any, settings: Any) -> None:
    created = APIClient().post(
        f"/api/v1/public/checkout/{product.slug}/pay",
        {"buyer_email": "buyer@example.com", "init_payment": False},
        format="json",
    )
    assert created.status_code == 201, created.json()
    order_id = created.json()["data"]["id"]
    for name, value in STRIPE_ONLY.items():
        setattr(settings, name, value)

    response = APIClient().post(f"/api/v1/payments/initiate/{order_id}", {"payment_method": "sandbox"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"payment_method": ["Must be one of: stripe."]}
    assert Payment.objects.filter(order_id=order_id).count() == 0
    assert SandboxPayment.objects.count() == 0


# --- the sandbox on purpose: it says so everywhere ------------------------------------------------

NO_MONEY = "no money moves"


@pytest.mark.django_db
def test_every_sandbox_page_says_no_money_moves(product: Any, settings: Any) -> None:
    settings.SANDBOX_IN_PRODUCTION = True
    _, payment_id = _sandbox_checkout(product)
    client = Client()

    pay_page = client.get(f"/sandbox/pay/{payment_id}")
    refused = client.post(f"/sandbox/pay/{payment_id}", {"outcome": "maybe"})
    unknown = client.get("/sandbox/pay/pay_unknown")

    assert (pay_page.status_code, refused.status_code, unknown.status_code) == (200, 400, 404)
    for page in (pay_page, refused, unknown):
        assert NO_MONEY in page.content.decode()


@pytest.mark.django_db
def test_every_email_of_a_sandbox_paid_order_says_no_money_moves(
    product: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.SANDBOX_IN_PRODUCTION = True
    order, payment_id = _sandbox_checkout(product)
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(f"/sandbox/pay/{payment_id}", {"outcome": "succeeded"})
    assert Order.objects.get(id=order["id"]).status == "delivered"
    seller = APIClient()
    seller.force_authenticate(product.seller)
    with django_capture_on_commit_callbacks(execute=True):
        refund = seller.post(f"/api/v1/orders/{order['id']}/refund", {"reason": "test"}, format="json")
    assert refund.status_code in (200, 201), refund.json()

    subjects = [message.subject for message in mail.outbox]
    assert any(subject.startswith("Your order #") for subject in subjects), subjects
    assert any(subject.startswith("Refund for order #") for subject in subjects), subjects
    for message in mail.outbox:
        assert NO_MONEY in message.body, message.subject
        html = message.alternatives[0][0]  # type: ignore[attr-defined]
        assert NO_MONEY in html, message.subject


@pytest.mark.django_db
def test_emails_of_an_order_not_paid_through_the_sandbox_say_nothing_of_it(product: Any) -> None:
    from orders.emails import build_delivery_email

    order = Order.objects.get(id=_sandbox_checkout(product)[0]["id"])  # opened, never paid
    Payment.objects.filter(order=order).update(gateway="stripe", status="succeeded")

    message = build_delivery_email(order)

    assert NO_MONEY not in message.body


@pytest.mark.django_db
def test_readyz_reports_the_sandbox_in_production(client: Client, settings: Any) -> None:
    settings.SANDBOX_IN_PRODUCTION = True
    on_purpose = client.get("/readyz")
    settings.SANDBOX_IN_PRODUCTION = False
    development = client.get("/readyz")
    for name, value in STRIPE_ONLY.items():
        setattr(settings, name, value)
    settings.SANDBOX_IN_PRODUCTION = True
    flag_without_sandbox = client.get("/readyz")

    assert on_purpose.status_code == 200
    assert on_purpose.json()["status"] == "ok"
    assert on_purpose.json()["sandbox_in_production"] is True
    assert development.json()["sandbox_in_production"] is False
    assert flag_without_sandbox.json()["sandbox_in_production"] is False


# --- item 13: the embedded default writes emails to var/mail/ --------------------------------------

SEND_ONE = """
import django
django.setup()
from django.conf import settings
from django.core.mail import send_mail
send_mail("Your codes", "CODE-IN-THE-MAIL-7731", "shop@example.com", ["buyer@example.com"])
print("backend", settings.EMAIL_BACKEND)
"""


def test_the_embedded_default_writes_emails_to_var_mail_not_to_the_output(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(BASE_DIR)),
        "DJANGO_SETTINGS_MODULE": "marketplace.settings.local",
        "VAR_DIR": str(tmp_path),
    }

    result = subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-c", SEND_ONE], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "CODE-IN-THE-MAIL-7731" not in result.stdout + result.stderr
    assert "backend django.core.mail.backends.filebased.EmailBackend" in result.stdout
    written = list((tmp_path / "mail").iterdir())
    assert len(written) == 1
    assert "CODE-IN-THE-MAIL-7731" in written[0].read_text()


def test_the_test_settings_keep_emails_in_memory(settings: Any) -> None:
    assert settings.EMAIL_BACKEND == "django.core.mail.backends.locmem.EmailBackend"
