import pytest

from marketplace.core.errors import InvalidTransition
from orders.lifecycle import ALLOWED, can_move, order_transition
from orders.models import OrderEvent, OrderStatus

from .helpers import make_order

S = OrderStatus

# The moves of shared/API.md, written out by hand so a change to the table is caught.
EXPECTED = {
    ("pending", "paid"),
    ("pending", "failed"),
    ("pending", "cancelled"),
    ("failed", "pending"),
    ("failed", "cancelled"),
    ("paid", "delivered"),
    ("paid", "partially_delivered"),
    ("paid", "needs_attention"),
    ("partially_delivered", "delivered"),
    ("partially_delivered", "needs_attention"),
    ("needs_attention", "delivered"),
    ("needs_attention", "partially_delivered"),
    ("partially_refunded", "refunded"),
}
PAID_STATES = ["paid", "delivered", "partially_delivered", "needs_attention", "partially_refunded"]
for state in PAID_STATES:
    EXPECTED.add((state, "refunded"))
    if state != "partially_refunded":
        EXPECTED.add((state, "partially_refunded"))


def test_lifecycle_table_matches_the_contract():
    actual = {(a, b) for a, targets in ALLOWED.items() for b in targets}
    assert actual == EXPECTED


@pytest.mark.parametrize("from_status", S.values)
@pytest.mark.parametrize("to_status", S.values)
def test_can_move_is_the_table(from_status, to_status):
    assert can_move(from_status, to_status) is ((from_status, to_status) in EXPECTED)


@pytest.mark.django_db
def test_transition_records_an_event(text_product):
    order = make_order(text_product)
    events_before = OrderEvent.objects.filter(order=order).count()
    order_transition(order_id=order.id, to_status=S.PAID, message="paid in test")
    order.refresh_from_db()
    assert order.status == "paid"
    assert order.paid_at is not None
    event = OrderEvent.objects.filter(order=order).order_by("-created_at").first()
    assert (event.type, event.from_status, event.to_status, event.message) == (
        "status_changed",
        "pending",
        "paid",
        "paid in test",
    )
    assert OrderEvent.objects.filter(order=order).count() == events_before + 1


@pytest.mark.django_db
def test_illegal_transition_raises_and_changes_nothing(text_product):
    order = make_order(text_product)
    events_before = OrderEvent.objects.filter(order=order).count()
    with pytest.raises(InvalidTransition) as caught:
        order_transition(order_id=order.id, to_status=S.DELIVERED)
    assert caught.value.status_code == 409
    assert caught.value.code == "invalid_transition"
    order.refresh_from_db()
    assert order.status == "pending"
    assert order.delivered_at is None
    assert OrderEvent.objects.filter(order=order).count() == events_before


def test_the_status_sets_are_defined_once_and_agree_with_the_moves():
    """Every status set lives in orders.lifecycle; these are what the figures and checks mean."""
    from orders import lifecycle as L

    assert L.PAID_STATUSES == {
        "paid",
        "delivered",
        "partially_delivered",
        "needs_attention",
        "partially_refunded",
        "refunded",
    }
    assert L.REFUNDABLE == L.PAID_STATUSES - {"refunded"}
    assert L.FULFILLABLE == {"paid", "partially_delivered", "needs_attention"} <= L.PAID_STATUSES
    assert L.PAYABLE == {"pending", "failed"} and not (L.PAYABLE & L.PAID_STATUSES)
    assert L.AWAITING_DELIVERY <= L.FULFILLABLE
    assert L.CLOSED == {"cancelled", "refunded"}
    # A settled order is one with no automatic move left out of it except refunds and an operator's.
    for status in L.SETTLED:
        automatic = L.ALLOWED[status] - {"refunded", "partially_refunded"} - L.MANUAL.get(status, frozenset())
        assert automatic <= {"pending", "delivered", "partially_delivered"}, status
    assert not hasattr(L, "PAID_STATES")
