"""Issue 11, the seller-events cut: outgoing webhooks are one package (``orders/seller_events``),
services queue tasks by name (``marketplace.core.queue``) instead of importing ``orders.tasks``, and
the dashboard's webhook pages are ``dashboard/webhooks``. Behaviour is unchanged; what these tests
hold is the shape (no module of the old cut, no import inside a function body, no import cycle
whichever module is loaded first) and that the moved doors still refuse what they refused."""

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from celery import current_app
from django.db import transaction
from django.urls import resolve, reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from marketplace.core.queue import UnknownTask, enqueue, enqueue_on_commit, task_for
from orders.models import Order, SellerEvent, WebhookDelivery, WebhookEndpoint
from orders.seller_events.endpoints import webhook_endpoint_create
from orders.services import CheckoutLine, order_create, order_retry_delivery

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TASK_NAMES = {
    "orders.tasks.fulfil_order",
    "orders.tasks.sweep_orders",
    "orders.tasks.deliver_webhook",
    "orders.tasks.sweep_webhooks",
    "orders.tasks.send_gift",
    "orders.tasks.send_due_gifts",
    "orders.tasks.notify_seller_of_sale",
}
# The modules of this cut: none of them may import inside a function body.
OWN_MODULES = [
    "orders/seller_events/__init__.py",
    "orders/seller_events/endpoints.py",
    "orders/seller_events/delivery.py",
    "orders/seller_events/outbox.py",
    "orders/seller_events/order_events.py",
    "orders/seller_events/api.py",
    "orders/tasks.py",
    "orders/lifecycle.py",
    "orders/fulfillment/code_pool.py",
    "dashboard/webhooks/views.py",
    "marketplace/core/queue.py",
]


def _function_local_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    return found


def _imported_modules(path: Path, package: str) -> set[str]:
    """Every module a file imports, relative imports resolved against ``package``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


@pytest.fixture
def seller():
    return SellerFactory(name="Eve's Shop")


@pytest.fixture
def product(seller):
    product = ProductFactory(seller=seller, slug="eve-text", currency="USD", delivery_content="TEXT-1")
    VariantFactory(product=product, name="Standard", price=500)
    return product


def _order(product, **kwargs) -> Order:
    line = CheckoutLine(product.variants.get().id, 1)
    return order_create(product=product, buyer_email="b@example.com", lines=[line], **kwargs).order


# --- The shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize("old", ["orders.webhooks", "orders.outbox", "orders.webhook_api"])
def test_the_old_seller_event_modules_are_gone(old):
    assert importlib.util.find_spec(old) is None


def test_no_module_of_the_cut_imports_inside_a_function_body():
    found = [hit for name in OWN_MODULES for hit in _function_local_imports(ROOT / name)]
    assert found == []


def test_no_function_body_anywhere_imports_seller_events_or_tasks():
    """Where other modules still import inside functions (not this cut's), none of it is ours."""
    ours = ("orders.seller_events", ".seller_events", "orders.tasks", ".tasks", "orders.webhooks", ".webhooks")
    found = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".venv", "tests"} or "tests" in rel.parts or "migrations" in rel.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom):
                        module = "." * inner.level + (inner.module or "")
                        if module.startswith(ours) or module in {"orders.outbox", ".outbox"}:
                            found.append(f"{rel}:{inner.lineno} {module}")
    assert found == []


def test_nothing_but_celery_itself_imports_the_orders_task_module():
    """Services queue by name; a module that imported ``orders.tasks`` would close the cycle again."""
    importers = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".venv", "tests", "bench"} or "tests" in rel.parts or "migrations" in rel.parts:
            continue
        if rel == Path("orders/tasks.py"):
            continue
        package = ".".join(rel.with_suffix("").parts[:-1]) if rel.name != "__init__.py" else ".".join(rel.parts[:-1])
        if "orders.tasks" in _imported_modules(path, package):
            importers.append(str(rel))
    assert importers == []


def test_the_outbox_hands_events_over_without_an_optional_import():
    tree = ast.parse((ROOT / "orders/seller_events/outbox.py").read_text())
    handlers = [node for node in ast.walk(tree) if isinstance(node, ast.ExceptHandler)]
    assert handlers == []


@pytest.mark.parametrize(
    "first",
    [
        "orders.fulfillment",
        "orders.seller_events.outbox",
        "orders.seller_events.order_events",
        "orders.lifecycle",
        "orders.tasks",
        "orders.services",
        "dashboard.webhooks.views",
    ],
)
def test_each_module_loads_first_in_a_fresh_interpreter(first):
    """No import cycle: whichever module a process loads first, every name is there."""
    code = f"import django; django.setup(); import {first}; print('ok')"
    done = subprocess.run(  # noqa: S603 - our own interpreter, a fixed program
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "marketplace.settings.test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "ok"


def test_task_names_are_unchanged_and_registered():
    current_app.loader.import_default_modules()
    registered = {name for name in current_app.tasks if name.startswith("orders.")}
    assert registered == TASK_NAMES
    assert {task_for(name).name for name in TASK_NAMES} == TASK_NAMES


def test_a_web_process_that_never_imported_the_tasks_finds_them_by_name():
    """A web process imports no ``tasks`` module by itself (Celery discovers them lazily): queueing
    by name must not depend on something else having imported ``orders.tasks`` first."""
    code = (
        "import sys, django; django.setup()\n"
        "from marketplace.core.queue import task_for\n"
        "assert 'orders.tasks' not in sys.modules\n"
        "print(task_for('orders.tasks.fulfil_order').name)\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter, a fixed program
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "marketplace.settings.test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "orders.tasks.fulfil_order"


def test_the_dashboard_webhook_pages_keep_their_names_and_paths():
    expected = {
        "dashboard-webhooks": ((), "/dashboard/settings/webhooks/", "webhooks_list"),
        "dashboard-order-urls-roll": ((), "/dashboard/settings/webhooks/order-urls/roll/", "order_urls_secret_roll"),
        "dashboard-webhook": (("whe_x",), "/dashboard/settings/webhooks/whe_x/", "webhook_detail"),
        "dashboard-webhook-active": (("whe_x",), "/dashboard/settings/webhooks/whe_x/active/", "webhook_set_active"),
        "dashboard-webhook-delete": (("whe_x",), "/dashboard/settings/webhooks/whe_x/delete/", "webhook_delete"),
        "dashboard-webhook-resend": (
            ("whe_x", "dlv_y"),
            "/dashboard/settings/webhooks/whe_x/deliveries/dlv_y/resend/",
            "webhook_delivery_resend",
        ),
    }
    for name, (args, path, view) in expected.items():
        assert reverse(name, args=args) == path
        func = resolve(path).func
        assert (func.__module__, func.__name__) == ("dashboard.webhooks.views", view)
    # The account pages stayed where they were.
    assert resolve(reverse("dashboard-settings")).func.__module__ == "dashboard.account.settings"
    assert resolve(reverse("dashboard-discounts")).func.__module__ == "dashboard.account.settings"


# --- Queueing by name ----------------------------------------------------------------------------


def test_enqueue_runs_the_registered_task_eagerly_in_tests():
    assert enqueue("orders.tasks.sweep_webhooks").get() == {"dispatched": 0, "requeued": 0}


def test_an_unknown_task_name_is_a_clear_error_and_sends_nothing():
    with mock.patch("orders.tasks.fulfill_order.delay") as delay:
        with pytest.raises(UnknownTask, match="orders.tasks.fulfil_orders"):
            enqueue("orders.tasks.fulfil_orders", "ord_x")
        with pytest.raises(UnknownTask):
            enqueue_on_commit("orders.tasks.fulfil_orders", "ord_x")
    delay.assert_not_called()


def test_enqueue_on_commit_sends_after_commit_and_never_after_a_rollback(django_capture_on_commit_callbacks):
    with mock.patch("orders.tasks.deliver_webhook.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            try:
                with transaction.atomic():
                    enqueue_on_commit("orders.tasks.deliver_webhook", "dlv_rolled_back")
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass
        assert callbacks == []
        delay.assert_not_called()

        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            enqueue_on_commit("orders.tasks.deliver_webhook", "dlv_kept")
        assert len(callbacks) == 1
        delay.assert_called_once_with("dlv_kept")


def test_a_delivery_retry_queues_fulfill_order_by_its_name(seller, product):
    order = _order(product)
    Order.objects.filter(pk=order.pk).update(status="paid")
    with mock.patch("marketplace.core.queue.task_for", wraps=lambda name: current_app.tasks[name]) as lookup:
        with mock.patch("orders.tasks.fulfill_order.delay") as delay:
            order_retry_delivery(order=order, user=seller)
    lookup.assert_called_once_with("orders.tasks.fulfil_order")
    delay.assert_called_once_with(order.id)


# --- The moved doors still refuse ----------------------------------------------------------------


def test_a_seller_event_is_delivered_through_the_package_and_queued_by_name(
    seller, product, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint = webhook_endpoint_create(seller=seller, url="https://hooks.eve.example/in", events=["order.created"])
    with mock.patch("orders.tasks.deliver_webhook.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            order = _order(product)
    event = SellerEvent.objects.get(seller=seller)
    assert (event.type, event.data["data"]["id"]) == ("order.created", order.id)
    delivery = WebhookDelivery.objects.get(event=event)
    assert (delivery.endpoint_id, delivery.url, delivery.webhook_id) == (
        endpoint.id,
        "https://hooks.eve.example/in",
        "msg_" + event.id.removeprefix("evt_"),
    )
    delay.assert_called_once_with(delivery.id)


def test_the_moved_api_refuses_an_internal_url_and_creates_nothing(seller, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(seller).access_token}")
    response = client.post("/api/v1/webhook-endpoints", {"url": "https://169.254.169.254/latest"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["fields"] == {"url": ["The URL could not be reached."]}
    assert WebhookEndpoint.objects.filter(seller=seller).count() == 0


def test_the_moved_dashboard_page_refuses_an_unknown_event_and_creates_nothing(client, seller, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    client.force_login(seller)
    response = client.post(
        "/dashboard/settings/webhooks/",
        {"url": "https://hooks.eve.example/in", "events": ["order.exploded"], "active": "on"},
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "events" in response.context["form"].errors
    assert WebhookEndpoint.objects.filter(seller=seller).count() == 0


def test_another_sellers_endpoint_is_not_found_on_the_moved_pages(client, seller, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    theirs = webhook_endpoint_create(seller=SellerFactory(), url="https://theirs.example/hook")
    client.force_login(seller)
    assert client.get(f"/dashboard/settings/webhooks/{theirs.id}/").status_code == 404
    assert client.post(f"/dashboard/settings/webhooks/{theirs.id}/delete/").status_code == 404
    assert client.post(f"/dashboard/settings/webhooks/{theirs.id}/active/", {"active": "0"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.active is True
