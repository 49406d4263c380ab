"""A delayed gift with a claim link, through a live server and a real Celery worker.

The buyer pays over HTTP (checkout API → the sandbox's hosted page → the signed webhook); the worker
fulfils the order and sends the buyer's receipt. The recipient's e-mail waits for ``deliver_at``:
the beat task ``orders.tasks.send_due_gifts`` is published here as beat publishes it, and the worker
runs it — before ``deliver_at`` it sends nothing, after it one e-mail with a link and no code. The
codes appear when the link is opened, and the claim is in the order's timeline.

The worker writes its e-mails to files (``tests.reliability.worker_settings``), which the test reads.
"""

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from catalog.inventory import CodeRow, codes_import
from catalog.models import DeliveryType, Product
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from marketplace.celery import app as celery_app
from orders.models import Order, OrderEvent
from tests.e2e.test_buyer_journey import choose_on_sandbox, poll_order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CODES = ["E2E-GIFT-0001", "E2E-GIFT-0002"]
DELAY_SECONDS = 6


@pytest.fixture
def mail_dir(tmp_path: Path) -> Path:
    path = tmp_path / "mail"
    path.mkdir()
    return path


@pytest.fixture
def worker_env(mail_dir: Path) -> dict[str, str]:
    # The reliability tests' worker settings: the test settings with the file e-mail backend.
    return {"DJANGO_SETTINGS_MODULE": "tests.reliability.worker_settings", "RELIABILITY_MAIL_DIR": str(mail_dir)}


@pytest.fixture
def gift_product(transactional_db: None) -> Iterator[Product]:
    product = ProductFactory(
        seller=SellerFactory(name="Gift Shop"),
        slug="e2e-gift-card",
        title="Gift Card",
        currency="USD",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
    )
    variant = VariantFactory(product=product, name="Card", price=1999)
    codes_import(variant=variant, rows=[CodeRow(i + 1, code) for i, code in enumerate(CODES)])
    yield product


def messages(mail_dir: Path) -> list[str]:
    """Every e-mail the worker wrote, one string each (the file backend appends one per message)."""
    found: list[str] = []
    for path in sorted(mail_dir.glob("*.log")):
        found += [part for part in path.read_text().split("-" * 79) if part.strip()]
    return found


def to_recipient(mail_dir: Path) -> list[str]:
    return [m for m in messages(mail_dir) if re.search(r"^To: friend@example\.com$", m, re.M)]


def run_beat_task(site: Any) -> None:
    """Publishes the beat entry's task to the worker's queue and waits for the worker to finish it."""
    result = celery_app.send_task("orders.tasks.send_due_gifts")
    site.worker.wait_for_log(rf"Task orders\.tasks\.send_due_gifts\[{result.id}\] succeeded", timeout=60)


def test_a_delayed_gift_with_a_claim_link(e2e_site: Any, gift_product: Product, mail_dir: Path) -> None:
    deliver_at = timezone.now() + timedelta(seconds=DELAY_SECONDS)
    response = e2e_site.http.post(
        e2e_site.api(f"/api/v1/public/checkout/{gift_product.slug}/pay"),
        json={
            "buyer_email": "giver@example.com",
            "recipient_email": "friend@example.com",
            "deliver_at": deliver_at.isoformat(),
            "claim_link": True,
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    order = response.json()["data"]
    choose_on_sandbox(e2e_site, order["payment"]["redirect_url"], "succeeded")
    delivered = poll_order(e2e_site, gift_product.slug, order["id"], until="delivered")

    # The buyer's receipt at once, without a code; the buyer's view shows no code either.
    assert delivered["sub_status"] == "DELAYED"
    assert delivered["voucher_codes"] == []
    receipts = [m for m in messages(mail_dir) if re.search(r"^To: giver@example\.com$", m, re.M)]
    assert len(receipts) == 1, (list(mail_dir.iterdir()), messages(mail_dir))
    assert not any(code in receipts[0] for code in CODES)

    # Before deliver_at: the beat task runs and nothing reaches the recipient.
    run_beat_task(e2e_site)
    assert to_recipient(mail_dir) == []
    assert Order.objects.get(pk=order["id"]).gift_sent_at is None

    # After deliver_at: one e-mail, a link and no code; another beat run sends nothing more.
    time.sleep(max(0.0, (deliver_at - timezone.now()).total_seconds()) + 0.5)
    run_beat_task(e2e_site)
    run_beat_task(e2e_site)
    sent = to_recipient(mail_dir)
    assert len(sent) == 1
    assert not any(code in sent[0] for code in CODES)
    link = re.search(r"(https?://\S+/gift/[A-Za-z0-9_\-]+)", sent[0])
    assert link, sent[0]
    stored = Order.objects.get(pk=order["id"])
    assert stored.gift_sent_at is not None and stored.gift_sent_at >= deliver_at
    assert link.group(1).rsplit("/", 1)[-1] not in stored.gift_claim_token_hash

    # The codes appear on claim, and the claim is in the timeline with its time.
    page = e2e_site.http.get(link.group(1), timeout=30)
    assert page.status_code == 200 and not any(code in page.text for code in CODES)
    opened = e2e_site.http.post(link.group(1), timeout=30)
    assert opened.status_code == 200
    assert sum(code in opened.text for code in CODES) == 1
    claimed = OrderEvent.objects.get(order_id=order["id"], type="gift_claimed")
    assert claimed.data["claimed_at"]
    after = e2e_site.http.get(e2e_site.api(f"/api/v1/public/checkout/{gift_product.slug}/order/{order['id']}"))
    data = after.json()["data"]
    assert data["sub_status"] == "GV_LINK_CLAIMED"
    assert data["gift"]["claimed_at"] is not None
