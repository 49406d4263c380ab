from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from marketplace.core.ids import PrefixedIdField


class Role(models.TextChoices):
    SELLER = "seller", "Seller"
    BUYER = "buyer", "Buyer"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: Any) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("role", Role.SELLER)
        return self._create(email, password, **extra)


def validate_time_zone(value: str) -> None:
    """An IANA time zone name that this system knows ("Asia/Dhaka", "UTC")."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"'{value}' is not a known IANA time zone.", code="invalid_time_zone") from None


class User(AbstractBaseUser, PermissionsMixin):
    """Signs in with an email address. Sellers sell; buyers see their purchases."""

    id = PrefixedIdField(prefix="usr")
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.BUYER)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Can sign in to the operators' admin.")
    date_joined = models.DateTimeField(default=timezone.now)
    # Set by an operator to override the platform fee for this seller (empty: the settings' rates).
    platform_fee_bps = models.PositiveIntegerField(
        null=True, blank=True, help_text="Platform fee in basis points (500 = 5%); empty uses the default."
    )
    platform_fee_fixed = models.PositiveIntegerField(
        null=True, blank=True, help_text="Fixed platform fee per order in minor units; empty uses the default."
    )
    # Set by an operator to hold this seller's earnings longer or shorter (empty: ``PAYOUT_HOLD_DAYS``).
    payout_hold_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Days a sale stays pending before payout; empty uses the default."
    )
    # The seller's choice: an opened dispute (chargeback) suspends the buyer's access to what was
    # delivered until it is won (downloads, links, codes, licence keys).
    dispute_revokes_access = models.BooleanField(
        default=True,
        help_text="A buyer who disputes a payment loses access to what they bought until the dispute is won.",
    )
    # An email to the seller for each sale (on by default; the seller can turn it off in Settings).
    notify_on_sale = models.BooleanField(default=True, help_text="Email the seller about each sale.")
    # Shown to buyers as the address to write to about an order (empty: the account's email).
    support_email = models.EmailField(blank=True, help_text="Where buyers write about their orders.")
    # The seller's store: ``/s/<store_slug>``; ``store_bio`` (Markdown, sanitised) is its profile text.
    store_slug = models.SlugField(max_length=60, unique=True, null=True, blank=True, help_text="The store's address.")
    store_bio = models.TextField(blank=True, max_length=2000, help_text="Shown on your store page (Markdown).")
    # Decides what "a day" is in the seller's analytics (``orders/analytics.py``).
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text='IANA time zone name, e.g. "Europe/Berlin"; decides what a day is in analytics.',
    )

    # The address the user proved to own (a link sent to it was opened): the account's ``email`` is
    # verified while the two are the same. Guest orders placed with that address become the user's
    # to read (``my-orders``, the orders API); a changed email is unverified until proved again.
    verified_email = models.EmailField(blank=True, default="")

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["-date_joined"]

    def __str__(self) -> str:
        return self.email

    @property
    def is_seller(self) -> bool:
        return self.role == Role.SELLER

    @property
    def email_verified(self) -> bool:
        return bool(self.verified_email) and self.verified_email == self.email


class APIKey(models.Model):
    """A seller's secret API key. Only its SHA-256 hash is stored; the key is shown once."""

    id = PrefixedIdField(prefix="key")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise the key.")
    hashed_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
