"""The seller's outgoing-webhook pages (under Settings): endpoints, their delivery logs and resends,
and the secret that signs what goes to orders' own ``webhook_urls``.

Thin views over the same services as the API (``orders.seller_events``); their ``ApplicationError``
messages are shown next to the field they name. A ``whsec_`` secret is shown in the response that
made it, never stored in the session, and the page is sent with ``Cache-Control: no-store``.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.account.settings import _secret_page, _seller, apply_error
from dashboard.auth import not_found as _not_found
from dashboard.auth import seller_required
from marketplace.core.errors import ApplicationError
from orders.models import WebhookDelivery, WebhookEndpoint
from orders.seller_events import delivery as seller_event_delivery
from orders.seller_events import endpoints as seller_endpoints

DELIVERIES_PER_PAGE = 20


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(label="Endpoint URL", max_length=2000, help_text="An https:// URL on a public host.")
    events = forms.MultipleChoiceField(
        label="Events",
        required=False,
        choices=[(event, event) for event in seller_endpoints.EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave every box empty to receive every event.",
    )
    active = forms.BooleanField(label="Active", required=False, initial=True)


def _endpoint_or_none(request: HttpRequest, endpoint_id: str, *, any_kind: bool = False) -> WebhookEndpoint | None:
    try:
        return seller_endpoints.webhook_endpoint_get(
            seller=_seller(request), endpoint_id=endpoint_id, any_kind=any_kind
        )
    except ApplicationError:
        return None


def _webhooks_page(request: HttpRequest, form: WebhookEndpointForm, **extra: Any) -> HttpResponse:
    endpoints = list(seller_endpoints.webhook_endpoint_list(seller=_seller(request)))
    order_urls = WebhookEndpoint.objects.filter(seller=_seller(request), kind=WebhookEndpoint.Kind.ORDER_URLS).first()
    context = {
        "form": form,
        "endpoints": endpoints,
        "order_urls": order_urls,
        "section": "webhooks",
        "new_endpoint": None,
        "new_order_urls_secret": None,
        **extra,
    }
    return _secret_page(request, "dashboard/webhooks.html", context)


@require_http_methods(["GET", "POST"])
@seller_required
def webhooks_list(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _webhooks_page(request, WebhookEndpointForm(initial={"active": True}))
    form = WebhookEndpointForm(request.POST)
    if form.is_valid():
        try:
            endpoint = seller_endpoints.webhook_endpoint_create(
                seller=_seller(request),
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                active=form.cleaned_data["active"],
            )
        except ApplicationError as exc:
            apply_error(form, exc)
        else:
            return _webhooks_page(request, WebhookEndpointForm(initial={"active": True}), new_endpoint=endpoint)
    return _webhooks_page(request, form)


@require_POST
@seller_required
def order_urls_secret_roll(request: HttpRequest) -> HttpResponse:
    endpoint = seller_endpoints.order_urls_secret_roll(seller=_seller(request))
    return _webhooks_page(request, WebhookEndpointForm(initial={"active": True}), new_order_urls_secret=endpoint.secret)


@require_http_methods(["GET", "POST"])
@seller_required
def webhook_detail(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    """An endpoint's settings and its delivery log; the orders' own URLs have a log and no settings."""
    endpoint = _endpoint_or_none(request, endpoint_id, any_kind=True)
    if endpoint is None:
        return _not_found(request)
    editable = endpoint.kind == WebhookEndpoint.Kind.ENDPOINT
    form: WebhookEndpointForm | None = None
    if editable:
        initial = {"url": endpoint.url, "events": endpoint.events, "active": endpoint.active}
        form = WebhookEndpointForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST":
        if form is None:
            return _not_found(request)
        if form.is_valid():
            try:
                seller_endpoints.webhook_endpoint_update(endpoint=endpoint, data=form.cleaned_data)
            except ApplicationError as exc:
                apply_error(form, exc)
            else:
                messages.success(request, "Endpoint saved.")
                return HttpResponseRedirect(reverse("dashboard-webhook", args=[endpoint.id]))
    page = Paginator(seller_event_delivery.webhook_delivery_list(endpoint=endpoint), DELIVERIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {"endpoint": endpoint, "form": form, "page": page, "deliveries": page.object_list, "section": "webhooks"}
    return render(request, "dashboard/webhooks_detail.html", context)


@require_POST
@seller_required
def webhook_set_active(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint_or_none(request, endpoint_id)
    if endpoint is None:
        return _not_found(request)
    active = request.POST.get("active") == "1"
    seller_endpoints.webhook_endpoint_update(endpoint=endpoint, data={"active": active})
    if active:
        messages.success(request, "Endpoint enabled: new events are sent to it again.")
    else:
        messages.success(request, "Endpoint disabled: no events are sent to it until you enable it.")
    return HttpResponseRedirect(reverse("dashboard-webhook", args=[endpoint.id]))


@require_POST
@seller_required
def webhook_delete(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint_or_none(request, endpoint_id)
    if endpoint is None:
        return _not_found(request)
    url = endpoint.url
    seller_endpoints.webhook_endpoint_delete(endpoint=endpoint)
    messages.success(request, f"Endpoint {url} deleted; its pending deliveries were stopped.")
    return HttpResponseRedirect(reverse("dashboard-webhooks"))


@require_POST
@seller_required
def webhook_delivery_resend(request: HttpRequest, endpoint_id: str, delivery_id: str) -> HttpResponse:
    endpoint = _endpoint_or_none(request, endpoint_id, any_kind=True)
    if endpoint is None:
        return _not_found(request)
    try:
        delivery = seller_event_delivery.webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id)
    except ApplicationError:
        return _not_found(request)
    try:
        seller_event_delivery.webhook_delivery_resend(delivery=delivery)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Delivery {delivery.id} queued again, with the same webhook-id.")
    return HttpResponseRedirect(reverse("dashboard-webhook", args=[endpoint.id]))


@require_POST
@seller_required
def webhook_test(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    """Sends a signed ``ping`` now; the message says what the endpoint answered."""
    endpoint = _endpoint_or_none(request, endpoint_id)
    if endpoint is None:
        return _not_found(request)
    try:
        delivery = seller_event_delivery.webhook_endpoint_test(endpoint=endpoint)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if delivery.status == WebhookDelivery.Status.SUCCEEDED:
            messages.success(request, f"Test event sent: your endpoint answered HTTP {delivery.last_status_code}.")
        else:
            messages.error(request, f"Test event not accepted: {delivery.last_error or 'no answer.'}")
    return HttpResponseRedirect(reverse("dashboard-webhook", args=[endpoint.id]))
