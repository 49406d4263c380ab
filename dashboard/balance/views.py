"""The seller's Balance pages: balances with their holds and the next payout, the statement (filters,
keyset pages, CSV), payout history and one payout, payout settings and "Request payout".

Thin views over the ledger's selectors and payout services (the API's): nothing here sums a line or
moves money. Every query is scoped to the signed-in seller; another seller's payout is a 404.
"""

from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.account.settings import apply_error
from dashboard.auth import not_found as _not_found
from dashboard.auth import seller_required
from ledger.api import statement_csv_chunks
from ledger.filters import transactions_filter
from ledger.models import BalanceTransaction, Payout, PayoutEvent, PayoutMethod, PayoutSchedule, TransactionType
from ledger.payouts import BankAccountInput, payout_create, payout_settings_get, payout_settings_update
from ledger.selectors import (
    balance_for_seller,
    pending_releases_for_seller,
    transaction_to_dict,
    transactions_for_seller,
)
from ledger.stripe_connect import stripe_account_get
from marketplace.accounts.models import User
from marketplace.core.errors import ApplicationError
from marketplace.core.money import format_money
from orders.models import Order

from .forms import PayoutSettingsForm, StatementFilterForm

STATEMENT_PAGE_SIZE = 50
PAYOUTS_PER_PAGE = 25
RECENT_PAYOUTS = 5
SCHEDULE_WORDS = {PayoutSchedule.WEEKLY: "every Monday", PayoutSchedule.MONTHLY: "on the 1st of each month"}


def _seller(request: HttpRequest) -> User:
    return cast(User, request.user)


def _zone(user: Any) -> ZoneInfo:
    return ZoneInfo(getattr(user, "time_zone", "") or "UTC")


def _render(request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    """Dates shown in the seller's own time zone."""
    with timezone.override(_zone(request.user)):
        return render(request, template, {"zone": _zone(request.user), **context}, status=status)


# --- Balance -------------------------------------------------------------------------------------


def _payout_outlook(*, config: Any, balance: dict[str, Any]) -> dict[str, Any]:
    """What happens next with the seller's money, and why: the scheduled payout's date and amount,
    or the reason there is none (no bank account, below the minimum, a manual schedule)."""
    balances = balance["balances"]
    minimum = max(config.minimum_amount, 1) if config else 1
    outlook: dict[str, Any] = {
        "has_bank_account": bool(config and config.has_bank_account),
        "schedule": config.schedule if config else PayoutSchedule.MANUAL,
        "schedule_words": SCHEDULE_WORDS.get(config.schedule, "") if config else "",
        "minimum": config.minimum_amount if config else 0,
        "next": None,
        "reason": "",
        "requestable": [],
    }
    if not outlook["has_bank_account"]:
        outlook["reason"] = "no_bank_account"
    elif outlook["schedule"] == PayoutSchedule.MANUAL:
        outlook["reason"] = "manual"
    elif not balances:
        outlook["reason"] = "nothing"
    else:
        upcoming = balance["next_payout"]
        if upcoming and upcoming["amount"] > 0:
            outlook["next"] = upcoming
        else:
            outlook["reason"] = "below_minimum"
    outlook["requestable"] = [
        {**row, "below_minimum": row["available"] < minimum, "minimum_text": format_money(minimum, row["currency"])}
        for row in balances
    ]
    return outlook


@require_GET
@seller_required
def balance_overview(request: HttpRequest) -> HttpResponse:
    seller = _seller(request)
    now = timezone.now()
    balance = balance_for_seller(seller=seller)
    releases = pending_releases_for_seller(seller=seller, now=now, zone=_zone(seller))
    config = payout_settings_get(seller=seller)
    recent = list(Payout.objects.filter(seller=seller).order_by("-created_at", "-id")[:RECENT_PAYOUTS])
    rows = [
        {**row, "releases": [r for r in releases if r["currency"] == row["currency"]]} for row in balance["balances"]
    ]
    return _render(
        request,
        "dashboard/balance.html",
        {
            "section": "overview",
            "rows": rows,
            "hold_days": balance["hold_days"],
            "outlook": _payout_outlook(config=config, balance=balance),
            "recent_payouts": recent,
            "any_negative": any(r["available"] < 0 or r["total"] < 0 for r in rows),
            "any_reserved": any(r["reserved"] for r in rows),
            "any_pending": bool(releases),
        },
    )


@require_POST
@seller_required
def payout_request(request: HttpRequest) -> HttpResponse:
    """Pays out the available balance in one currency now, through the API's ``payout_create``; its
    refusals (no bank account, below the minimum) come back as the message the API sends."""
    currency = request.POST.get("currency", "").strip().upper()[:3]
    try:
        payout = payout_create(seller=_seller(request), currency=currency, actor=request.user)
    except ApplicationError as exc:
        problems = [message for field_messages in (exc.fields or {}).values() for message in field_messages]
        messages.error(request, " ".join(problems) if problems else exc.message)
        return HttpResponseRedirect(reverse("dashboard-balance"))
    messages.success(
        request,
        f"Payout {payout.id} of {format_money(payout.amount, payout.currency)} requested. "
        "It is sent by bank transfer once our team approves it.",
    )
    return HttpResponseRedirect(reverse("dashboard-payout", args=[payout.id]))


# --- Statement -----------------------------------------------------------------------------------


def _cursor(btx: BalanceTransaction) -> str:
    return f"{btx.created_at.isoformat()}~{btx.id}"


def _parse_cursor(raw: str) -> tuple[datetime, str] | None:
    stamp, sep, btx_id = raw.partition("~")
    if not sep or not btx_id.startswith("btx_") or len(btx_id) > 40:
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (when, btx_id) if when.tzinfo else None


def _statement_queryset(request: HttpRequest, form: StatementFilterForm) -> QuerySet[BalanceTransaction]:
    wanted, start, end = form.wanted()
    queryset = transactions_filter(transactions_for_seller(seller=request.user), wanted)
    if start:
        queryset = queryset.filter(created_at__gte=start)
    if end:
        queryset = queryset.filter(created_at__lt=end)
    return queryset


def statement_page(
    queryset: QuerySet[BalanceTransaction], *, before: tuple[datetime, str] | None, after: tuple[datetime, str] | None
) -> tuple[list[BalanceTransaction], bool, bool]:
    """One page of the statement, newest first, by keyset on (created_at, id) — the order of the
    ``ledger_btx_seller_created`` index — so the millionth line costs what the first does.
    Returns (rows, has_newer, has_older)."""
    size = STATEMENT_PAGE_SIZE
    if after is not None:
        when, btx_id = after
        newer = queryset.filter(created_at__gte=when).exclude(Q(created_at=when) & Q(id__lte=btx_id))
        rows = list(newer.order_by("created_at", "id")[: size + 1])
        has_newer = len(rows) > size
        return rows[:size][::-1], has_newer, True
    if before is not None:
        when, btx_id = before
        queryset = queryset.filter(created_at__lte=when).exclude(Q(created_at=when) & Q(id__gte=btx_id))
    rows = list(queryset.order_by("-created_at", "-id")[: size + 1])
    return rows[:size], before is not None, len(rows) > size


def _statement_rows(seller: Any, page: list[BalanceTransaction]) -> list[dict[str, Any]]:
    """The page's rows with their order's number for the link (one query for the page)."""
    now = timezone.now()
    order_ids = {btx.order_id for btx in page if btx.order_id}
    numbers = (
        dict(Order.objects.filter(seller=seller, id__in=order_ids).values_list("id", "order_number"))
        if order_ids
        else {}
    )
    return [
        {
            **transaction_to_dict(btx, now=now),
            "type_label": TransactionType(btx.type).label if btx.type in TransactionType.values else btx.type,
            "order_number": numbers.get(btx.order_id),
            "cursor": _cursor(btx),
        }
        for btx in page
    ]


def _filter_query(form: StatementFilterForm) -> str:
    """The filters as typed (for the CSV link and the page links), without the page cursor."""
    keep = QueryDict(mutable=True)
    data = cast(QueryDict, form.data)
    for key in ("type", "currency", "order", "payout", "created_from", "created_to"):
        values = [v for v in data.getlist(key) if v.strip()]
        if values:
            keep.setlist(key, values)
    return keep.urlencode()


@require_GET
@seller_required
def statement(request: HttpRequest) -> HttpResponse:
    seller = _seller(request)
    form = StatementFilterForm(request.GET, seller=seller)
    queryset = _statement_queryset(request, form)
    before = _parse_cursor(request.GET.get("before", ""))
    after = _parse_cursor(request.GET.get("after", "")) if before is None else None
    broken = bool(request.GET.get("before") or request.GET.get("after")) and before is None and after is None
    page, has_newer, has_older = statement_page(queryset, before=before, after=after)
    rows = _statement_rows(seller, page)
    query = _filter_query(form)
    prefix = f"{query}&" if query else ""
    return _render(
        request,
        "dashboard/balance_statement.html",
        {
            "section": "statement",
            "form": form,
            "rows": rows,
            "broken_cursor": broken,
            "filtered": bool(query),
            "filter_query": query,
            "newer_query": f"{prefix}{urlencode({'after': rows[0]['cursor']})}" if rows and has_newer else "",
            "older_query": f"{prefix}{urlencode({'before': rows[-1]['cursor']})}" if rows and has_older else "",
        },
    )


@require_GET
@seller_required
def statement_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The statement with the page's filters as CSV, streamed (``ledger.api.statement_csv_chunks``,
    the API's statement). Filters that are not valid are a 400 with the page and its errors."""
    form = StatementFilterForm(request.GET, seller=_seller(request))
    queryset = _statement_queryset(request, form)
    if form.errors:
        return _render(
            request,
            "dashboard/balance_statement.html",
            {"section": "statement", "form": form, "rows": [], "filtered": True, "filter_query": ""},
            status=400,
        )
    response = StreamingHttpResponse(
        (chunk.encode() for chunk in statement_csv_chunks(queryset)), content_type="text/csv; charset=utf-8"
    )
    today = timezone.localdate(timezone=_zone(request.user)).isoformat()
    response["Content-Disposition"] = f'attachment; filename="statement-{today}.csv"'
    response["Cache-Control"] = "no-store"
    return response


# --- Payouts -------------------------------------------------------------------------------------


@require_GET
@seller_required
def payouts_list(request: HttpRequest) -> HttpResponse:
    payouts = Payout.objects.filter(seller=_seller(request)).order_by("-created_at", "-id")
    page = Paginator(payouts, PAYOUTS_PER_PAGE).get_page(request.GET.get("page"))
    return _render(request, "dashboard/balance_payouts.html", {"section": "payouts", "page": page})


@require_GET
@seller_required
def payout_detail(request: HttpRequest, payout_id: str) -> HttpResponse:
    seller = _seller(request)
    payout = Payout.objects.filter(seller=seller, pk=payout_id).first()
    if payout is None:
        return _not_found(request)
    transactions = list(transactions_for_seller(seller=seller).filter(payout_id=payout.id))
    events = list(
        PayoutEvent.objects.filter(payout=payout).exclude(kind=PayoutEvent.Kind.EXPORTED).order_by("created_at", "id")
    )
    up_to = f"{payout.currency}"
    return _render(
        request,
        "dashboard/balance_payout.html",
        {
            "section": "payouts",
            "payout": payout,
            "rows": _statement_rows(seller, transactions),
            "events": events,
            "earlier_query": urlencode(
                {"currency": up_to, "before": _cursor(transactions[-1])} if transactions else {"currency": up_to}
            ),
        },
    )


# --- Payout settings -----------------------------------------------------------------------------

_SERVICE_FIELDS = {
    "bank_account": "holder",
    "bank_account.holder": "holder",
    "bank_account.number": "number",
    "bank_account.bank": "bank",
    "bank_account.country": "country",
}


@require_http_methods(["GET", "POST"])
@seller_required
def payout_settings(request: HttpRequest) -> HttpResponse:
    """The API's ``payout_settings_update`` behind a form: a refused field is shown next to it and
    nothing is saved. The account number is never shown back, only its last 4 (blank keeps it)."""
    seller = _seller(request)
    current = payout_settings_get(seller=seller)
    hint = current.bank_number_hint if current else ""
    stripe_account = stripe_account_get(seller=seller)
    stripe_enabled = stripe_account is not None and stripe_account.can_receive_payouts
    if request.method == "POST":
        form = PayoutSettingsForm(request.POST, number_hint=hint, stripe_enabled=stripe_enabled)
        if form.is_valid():
            data = form.cleaned_data
            bank = None
            if data["method"] == PayoutMethod.BANK_TRANSFER or form.bank_account_given:
                bank = BankAccountInput(
                    holder=data["holder"].strip(),
                    number=data["number"].strip() or None,
                    bank=data["bank"].strip(),
                    country=data["country"].strip(),
                )
            try:
                payout_settings_update(
                    seller=seller,
                    method=data["method"],
                    schedule=data["schedule"],
                    minimum_amount=data["minimum_amount"],
                    bank_account=bank,
                )
            except ApplicationError as exc:
                apply_error(form, exc, rename=_SERVICE_FIELDS)
            else:
                messages.success(request, "Payout settings saved.")
                return HttpResponseRedirect(reverse("dashboard-payout-settings"))
        status = 400
    else:
        initial: dict[str, Any] = {}
        if current is not None:
            initial = {
                "method": current.method,
                "schedule": current.schedule,
                "minimum_amount": current.minimum_amount,
                "holder": current.bank_holder,
                "bank": current.bank_name,
                "country": current.bank_country,
            }
        form = PayoutSettingsForm(initial=initial, number_hint=hint, stripe_enabled=stripe_enabled)
        status = 200
    context = {"section": "settings", "form": form, "stripe_account": stripe_account}
    response = _render(request, "dashboard/balance_settings.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response
