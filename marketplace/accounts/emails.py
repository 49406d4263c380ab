"""What an account holder receives by email from the accounts themselves (the password reset is
Django's own, in ``templates/registration/``)."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from .models import User


def build_registration_attempt_email(user: User) -> EmailMultiAlternatives:
    """Sent instead of an error when someone registers with an address that has an account: the
    owner learns of it, and the person registering learns nothing about the address."""
    context = {
        "user": user,
        "login_url": settings.SITE_URL + reverse("login"),
        "reset_url": settings.SITE_URL + reverse("password_reset"),
    }
    message = EmailMultiAlternatives(
        subject="Someone tried to sign up with your email address",
        body=render_to_string("emails/registration_attempt.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )
    message.attach_alternative(render_to_string("emails/registration_attempt.html", context), "text/html")
    return message


def build_email_verification_email(user: User, token: str) -> EmailMultiAlternatives:
    """The token proves the address; it is sent to it and nowhere else (never logged)."""
    context = {"user": user, "token": token, "confirm_url": settings.SITE_URL + "/api/v1/auth/verify-email/confirm"}
    message = EmailMultiAlternatives(
        subject="Confirm your email address",
        body=render_to_string("emails/verify_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )
    message.attach_alternative(render_to_string("emails/verify_email.html", context), "text/html")
    return message
