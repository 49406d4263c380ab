"""What a seller receives by email about a payout: that it was sent (paid), or that it failed, with
the reason and what to do. Text with an HTML alternative, from ``templates/emails/``."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from marketplace.core.money import format_money

from .models import Payout, PayoutStatus


def build_payout_email(payout: Payout) -> EmailMultiAlternatives | None:
    """The message for a paid or failed payout; None for any other status (nothing to tell)."""
    if payout.status == PayoutStatus.PAID:
        template, subject = "payout_paid", f"Your payout of {format_money(payout.amount, payout.currency)} was sent"
    elif payout.status == PayoutStatus.FAILED:
        template, subject = "payout_failed", f"Your payout of {format_money(payout.amount, payout.currency)} failed"
    else:
        return None
    context = {
        "payout": payout,
        "amount": format_money(payout.amount, payout.currency),
        "settings_url": settings.SITE_URL + "/dashboard/",
    }
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"emails/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[payout.seller.email],
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    return message


def payout_email_send(*, payout_id: str) -> None:
    payout = Payout.objects.select_related("seller").get(pk=payout_id)
    message = build_payout_email(payout)
    if message is not None:
        message.send()
