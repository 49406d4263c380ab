"""Payments: opening them, and believing them only when the gateway confirms server-side.

Incoming gateway events are in ``gateway_events.py``, refunds in ``refunds.py``; what a payment does
to its order goes through ``ports.order_port()`` (payments never imports orders)."""

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.core.errors import ApplicationError, DependencyUnavailable
from marketplace.core.money import format_money

from .gateways import GatewayStatus, GatewayUnavailable, get_gateway
from .models import Payment, PaymentStatus
from .ports import OrderActor, PayableOrder, order_port

logger = logging.getLogger(__name__)


# How long a request that opened a payment may still be talking to its gateway. A payment with no
# gateway page after this is taken as abandoned (its request died), closed, and replaced.
PAYMENT_OPENING_STALE_SECONDS = 120
# A gateway's answer that does not match its payment is written on the order's timeline once in this
# long (the sweeper asks about open payments every run).
MISMATCH_RECORDED_FOR_SECONDS = 24 * 60 * 60
# How long a second request waits for the first one's gateway page before it answers without it.
PAYMENT_OPENING_WAIT_SECONDS = 10.0


@dataclass
class OpenedPayment:
    payment: Payment
    created: bool  # False: the order already had this open payment


def payment_initiate(*, order: PayableOrder, gateway_name: str | None, return_url: str) -> Payment:
    """The order's open payment (see ``payment_open``)."""
    return payment_open(order=order, gateway_name=gateway_name, return_url=return_url).payment


def payment_open(*, order: PayableOrder, gateway_name: str | None, return_url: str) -> OpenedPayment:
    """Opens a payment for a pending order (or a failed one, which becomes pending again), or answers
    the one that is already open.

    An order has at most one open (pending) payment, whatever its gateway: two would be two pages a
    buyer can pay. The order's row is locked while it is decided, and a partial unique constraint
    holds it in the database too; the loser of a race answers the winner's payment. A payment whose
    gateway call failed is marked failed, so it is not open; one whose gateway call is still under
    way is waited for briefly, and taken as abandoned once it is ``PAYMENT_OPENING_STALE_SECONDS`` old.
    """
    gateway = get_gateway(gateway_name, currency=order.currency)
    orders = order_port()
    try:
        with transaction.atomic():
            locked = orders.lock(order_id=order.pk)
            if not orders.can_take_payment(locked):
                raise ApplicationError(
                    f"This order is {locked.status}; it cannot take a payment.",
                    code="invalid_transition",
                    status_code=409,
                )
            open_payment = _open_payment(locked)
            if open_payment is None:
                locked = orders.reopen_for_payment(order=locked)
                # The payment row is committed before the gateway is called (its id is the gateway's
                # idempotency key), so a slow gateway never holds a transaction open.
                with transaction.atomic():
                    payment = Payment.objects.create(
                        order_id=locked.pk,
                        gateway=gateway.name,
                        amount=locked.total_amount,
                        currency=locked.currency,
                        payment_method=gateway.name,
                    )
    except IntegrityError:
        # Another request opened one between our read and our insert (no row lock on SQLite).
        open_payment = _open_payment(order)
        if open_payment is None:
            raise
    if open_payment is not None:
        return OpenedPayment(_wait_for_gateway_page(open_payment), created=False)
    order = locked
    try:
        checkout = gateway.create_checkout(payment=payment, order=order, return_url=return_url)
    except Exception as exc:
        Payment.objects.filter(pk=payment.pk).update(
            status=PaymentStatus.FAILED, failure_reason=f"The gateway did not open the payment: {exc}"[:500]
        )
        if isinstance(exc, GatewayUnavailable):
            raise DependencyUnavailable("The payment gateway is not answering. Please try again.") from exc
        raise
    with transaction.atomic():
        payment.redirect_url = checkout.redirect_url
        payment.transaction_id = checkout.transaction_id
        payment.save(update_fields=["redirect_url", "transaction_id", "updated_at"])
        orders.record_event(
            order=order,
            type="payment_initiated",
            message=f"Payment opened with {gateway.name}.",
            actor=OrderActor.BUYER,
            data={"payment_id": payment.id, "amount": payment.amount},
        )
    return OpenedPayment(payment, created=True)


def payment_open_in_order_transaction(
    *, order: PayableOrder, gateway_name: str | None, return_url: str
) -> Payment | None:
    """Opens the first payment of an order created in the caller's transaction, when its gateway
    opens in process (the sandbox); None for a remote gateway, which ``payment_open`` opens after
    the order commits.

    The order's row was inserted by this transaction, so it is already ours, pending, and has no
    payment: ``payment_open``'s lock and its open-payment look-up have nothing to find. The ``pay_``
    id is made here, so the gateway is asked first and the payment is inserted once, complete with
    its ``redirect_url``: the order, its payment, the gateway's own record and the
    ``payment_initiated`` event commit together, or not at all.
    """
    gateway = get_gateway(gateway_name)
    if not gateway.opens_in_process:
        return None
    payment = Payment(
        order_id=order.pk,
        gateway=gateway.name,
        amount=order.total_amount,
        currency=order.currency,
        payment_method=gateway.name,
    )
    try:
        checkout = gateway.create_checkout(payment=payment, order=order, return_url=return_url)
    except GatewayUnavailable as exc:  # the whole order rolls back with it: nothing is left behind
        raise DependencyUnavailable("The payment gateway is not answering. Please try again.") from exc
    payment.redirect_url = checkout.redirect_url
    payment.transaction_id = checkout.transaction_id
    payment.save(force_insert=True)
    order_port().record_event(
        order=order,
        type="payment_initiated",
        message=f"Payment opened with {gateway.name}.",
        actor=OrderActor.BUYER,
        data={"payment_id": payment.id, "amount": payment.amount},
    )
    return payment


def _open_payment(order: PayableOrder) -> Payment | None:
    """The order's open payment, if any. One still without a gateway page past the stale limit was
    abandoned by the request that opened it: it is closed (failed), so that a new one can open."""
    payment = Payment.objects.filter(order_id=order.pk, status=PaymentStatus.PENDING).first()
    if payment is None or payment.redirect_url:
        return payment
    if payment.created_at < timezone.now() - timedelta(seconds=PAYMENT_OPENING_STALE_SECONDS):
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING, redirect_url="").update(
            status=PaymentStatus.FAILED, failure_reason="The gateway page was never opened; abandoned."
        )
        return Payment.objects.filter(order_id=order.pk, status=PaymentStatus.PENDING).first()
    return payment


def _wait_for_gateway_page(payment: Payment) -> Payment:
    """Another request is opening this payment at its gateway: wait for its page a little."""
    deadline = time.monotonic() + PAYMENT_OPENING_WAIT_SECONDS
    while not payment.redirect_url and payment.status == PaymentStatus.PENDING and time.monotonic() < deadline:
        time.sleep(0.05)
        payment.refresh_from_db()
    return payment


def payment_gateway_status(*, payment: Payment, capture: bool = False) -> GatewayStatus:
    """The gateway's own, server-side word on the payment. For a gateway that needs a capture (bKash),
    an open (or failed, then returned to) payment the gateway holds as approved is executed first:
    at once when ``capture`` (the buyer's browser says it approved), else when ``retrieve`` answers
    ``approved``. Raises ``GatewayUnavailable`` when the gateway does not answer."""
    gateway = get_gateway(payment.gateway)
    can_capture = gateway.needs_capture and payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED)
    if capture and can_capture:
        return gateway.capture(payment=payment)
    status = gateway.retrieve(payment=payment)
    if status.status == "approved" and can_capture:
        return gateway.capture(payment=payment)
    return status


def payment_apply_gateway_status(
    *, payment: Payment, source: str, capture: bool = False, close_unpaid: str = ""
) -> bool:
    """Asks the gateway for the payment's real status and applies it. Returns True if it is paid.

    The gateway is asked outside any transaction (a slow gateway never holds a lock). The payment's
    move is one guarded UPDATE (its row lock held to the end of the transaction, its status checked
    in its WHERE), so two webhooks for one payment are serialised as a ``SELECT … FOR UPDATE`` would
    serialise them, with one statement instead of two; the order is locked once, by the order side.
    ``payment`` is updated in place: the caller needs no reload.

    ``capture``: the buyer's browser says it approved (a ``needs_capture`` gateway executes first).
    ``close_unpaid`` (a reason): the buyer came back from the gateway, so an attempt the gateway
    still holds as open (neither paid nor failed) is over: it is closed as failed with this reason,
    and the order may take a new attempt. The buyer's word only ends an attempt the gateway did not
    complete; it never pays one.
    """
    orders = order_port()
    status = payment_gateway_status(payment=payment, capture=capture)
    with transaction.atomic():
        if status.status == "succeeded":
            wrong_reference = bool(status.reference) and status.reference != payment.id
            if status.amount != payment.amount or status.currency != payment.currency or wrong_reference:
                named = f" for {status.reference!r}" if wrong_reference else ""
                # Recorded once per distinct answer: the sweeper asks again every run, and the
                # timeline must say it once, not once a minute.
                claim = hashlib.sha256(f"{status.amount}|{status.currency}|{status.reference}".encode()).hexdigest()
                if cache.add(f"payment-mismatch:{payment.id}:{claim[:16]}", 1, timeout=MISMATCH_RECORDED_FOR_SECONDS):
                    orders.record_event(
                        order=payment.order,
                        type="payment_mismatch",
                        actor=OrderActor.GATEWAY,
                        message=f"The gateway reports {_money_text(status.amount, status.currency)}{named}; the order "
                        f"expects {format_money(payment.amount, payment.currency)} for {payment.id}. Not marked paid.",
                        data={"payment_id": payment.id},
                    )
                return False
            # Only forward: a refunded payment never goes back to merely "succeeded".
            transaction_id = status.transaction_id or payment.transaction_id
            if _payment_move(
                payment,
                from_statuses=(PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.CANCELLED),
                status=PaymentStatus.SUCCEEDED,
                transaction_id=transaction_id,
            ):
                payment.transaction_id = transaction_id
            orders.mark_paid(
                order_id=payment.order_id,
                payment_id=payment.id,
                message=f"Payment confirmed by {payment.gateway} ({source}).",
                risk=status.risk,
            )
            return True
        if status.status == "failed" and _payment_move(
            payment,
            from_statuses=(PaymentStatus.PENDING,),
            status=PaymentStatus.FAILED,
            failure_reason="Declined at the gateway.",
        ):
            orders.mark_payment_failed(
                order_id=payment.order_id,
                payment_id=payment.id,
                reason=f"The payment was declined ({payment.gateway}).",
            )
        elif (
            close_unpaid
            and status.status in ("pending", "approved")
            and _payment_move(
                payment,
                from_statuses=(PaymentStatus.PENDING,),
                status=PaymentStatus.FAILED,
                failure_reason=close_unpaid[:500],
            )
        ):
            orders.mark_payment_failed(order_id=payment.order_id, payment_id=payment.id, reason=close_unpaid)
    return False


def _payment_move(payment: Payment, *, from_statuses: tuple[str, ...], status: str, **values: Any) -> bool:
    """Moves the payment to ``status`` if it is still in one of ``from_statuses`` (one UPDATE that
    locks the row); on success the instance follows. Returns whether it moved."""
    now = timezone.now()
    moved = Payment.objects.filter(pk=payment.pk, status__in=from_statuses).update(
        status=status, updated_at=now, **values
    )
    if moved:
        payment.status = status
        payment.updated_at = now
        for name, value in values.items():
            setattr(payment, name, value)
    return bool(moved)


def payment_reconcile_order(*, order: PayableOrder) -> bool:
    """Re-checks an unpaid order's open payments with their gateways (a webhook may be lost)."""
    paid = False
    for payment in order.payments.filter(status=PaymentStatus.PENDING):
        paid = payment_apply_gateway_status(payment=payment, source="re-check") or paid
    return paid


def payment_reconcile_throttled(*, order: PayableOrder, every_seconds: int = 5) -> None:
    """For polling pages: re-check at most once every few seconds per order."""
    if not order_port().awaiting_payment(order):
        return
    if not cache.add(f"reconcile:{order.id}", 1, timeout=every_seconds):
        return
    try:
        payment_reconcile_order(order=order)
    except GatewayUnavailable:
        logger.warning("gateway unavailable while re-checking order %s", order.order_number)


def _money_text(amount: Any, currency: Any) -> str:
    """An amount a gateway reported, as money when it names a currency we know, else as it came (a
    gateway's odd answer is still recorded, never a crash)."""
    try:
        return format_money(int(amount), str(currency))
    except Exception:  # noqa: BLE001 - any unusable pair is shown raw
        return f"{amount} {currency}"
