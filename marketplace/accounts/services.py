import hashlib
import re
import secrets
from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

from marketplace.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from marketplace.core.ids import make_id

from .models import APIKey, Role, User
from .tasks import send_email_verification, send_registration_attempt_email

API_KEY_PREFIX = "sk_"


# How long after one "someone tried to sign up with your address" email the next may go out: a
# stranger registering in a loop cannot fill an inbox.
REGISTRATION_NOTICE_EVERY_SECONDS = 60 * 60


@dataclass(frozen=True)
class Registration:
    """What a registration answers (``id``, ``email``, ``name``, ``role``): the same fields, of the
    same form, whether the address was new or already had an account. ``user`` is the new account,
    or None when the address had one (the caller must not sign anybody in then)."""

    id: str
    email: str
    name: str
    role: str
    user: User | None


def user_register(*, email: str, password: str, name: str, role: str) -> Registration:
    """Creates an account, or, when the address already has one, changes nothing and emails that
    account's owner ("someone tried to sign up with your address: sign in or reset your password").

    The caller answers both the same way, so ``register`` does not tell which addresses have
    accounts: 201 with ``{id, email, name, role}`` (the contract's answer) where, for a taken
    address, ``id`` is a fresh random ``usr_`` id that names no account and grants nothing; the
    email and name echo what was sent. Invalid input is refused the same way before the address is
    looked at, the password is hashed on both paths and the email is sent by a task after commit,
    so the time taken tells nothing either. (Signing in with the password just sent still tells,
    as on any site that opens an account without confirming the address first.)"""
    email = email.strip().lower()
    if role not in Role.values:
        raise ValidationFailed(fields={"role": [f"Must be one of: {', '.join(Role.values)}."]})
    candidate = User(email=email, name=name, role=role)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationFailed(exc.messages[0], fields={"password": list(exc.messages)}) from None
    if User.objects.filter(email__iexact=email).exists():
        return _registration_of_taken_address(email=email, password=password, name=name, role=role)
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password, name=name, role=role)
    except IntegrityError:  # the same address, registered at the same moment
        return _registration_of_taken_address(email=email, password=password, name=name, role=role)
    if user.is_seller:
        seller_store_slug_ensure(user)
    return Registration(id=user.id, email=user.email, name=user.name, role=user.role, user=user)


def _registration_of_taken_address(*, email: str, password: str, name: str, role: str) -> Registration:
    make_password(password)  # the work creating an account does, so that both answers take as long
    owner = User.objects.filter(email__iexact=email).first()
    if owner is not None and cache.add(f"registration-notice:{owner.id}", 1, REGISTRATION_NOTICE_EVERY_SECONDS):
        send_registration_attempt_email.delay_on_commit(owner.id)  # type: ignore[attr-defined]
    return Registration(id=make_id("usr"), email=email, name=name, role=role, user=None)


def user_registration_attempt_notify(*, user_id: str) -> bool:
    """Emails the owner of an address that someone tried to register again; False when the account
    is gone."""
    from .emails import build_registration_attempt_email

    owner = User.objects.filter(id=user_id).first()
    if owner is None:
        return False
    build_registration_attempt_email(owner).send(fail_silently=False)
    return True


# --- The seller's store address (/s/<store_slug>) ---------------------------------------------------

STORE_SLUG_MAX_LENGTH = 60
STORE_SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Addresses a store may not take: they would read as the marketplace's own pages.
RESERVED_STORE_SLUGS = frozenset({"admin", "api", "dashboard", "library", "static", "media", "support", "help"})


def store_slug_validate(slug: str) -> str:
    """A store address: lowercase letters, digits and single hyphens, 3–60 characters, not reserved."""
    if not 3 <= len(slug) <= STORE_SLUG_MAX_LENGTH:
        raise ValidationFailed(
            "The store address must be 3 to 60 characters.",
            fields={"store_slug": [f"Use 3 to {STORE_SLUG_MAX_LENGTH} characters."]},
        )
    if not STORE_SLUG_PATTERN.match(slug):
        message = "Use lowercase letters, digits and single hyphens (for example `ada-games`)."
        raise ValidationFailed(message, fields={"store_slug": [message]})
    if slug in RESERVED_STORE_SLUGS:
        raise ValidationFailed("This store address is reserved.", fields={"store_slug": ["This address is reserved."]})
    return slug


def _store_slug_taken(slug: str, *, exclude_id: str | None) -> bool:
    users = User.objects.filter(store_slug=slug)
    if exclude_id:
        users = users.exclude(pk=exclude_id)
    return users.exists()


def seller_store_slug_ensure(user: User) -> str:
    """The seller's store address, made from their name the first time it is needed."""
    if user.store_slug:
        return user.store_slug
    base = re.sub(r"-{2,}", "-", slugify(user.name or "").replace("_", "-"))[:50].strip("-")
    if len(base) < 3 or base in RESERVED_STORE_SLUGS:
        base = f"store-{base}".strip("-") if base else "store"
    for number in range(1, 50):
        candidate = base if number == 1 else f"{base}-{number}"
        if _store_slug_taken(candidate, exclude_id=None):
            continue
        try:
            with transaction.atomic():
                if User.objects.filter(pk=user.pk, store_slug=None).update(store_slug=candidate):
                    user.store_slug = candidate
                    return candidate
        except IntegrityError:
            continue  # taken by another seller at the same moment: try the next number
        user.refresh_from_db(fields=["store_slug"])
        return str(user.store_slug)
    candidate = f"{base[:40]}-{secrets.token_hex(4)}"
    User.objects.filter(pk=user.pk).update(store_slug=candidate)
    user.store_slug = candidate
    return candidate


def seller_store_update(*, user: User, store_slug: str, store_bio: str) -> User:
    """The seller's store address (unique) and profile text (Markdown, at most 2000 characters)."""
    store_slug = store_slug_validate(store_slug.strip().lower())
    store_bio = store_bio.strip()
    if len(store_bio) > 2000:
        raise ValidationFailed("The profile text is too long.", fields={"store_bio": ["At most 2000 characters."]})
    if _store_slug_taken(store_slug, exclude_id=user.pk):
        raise Conflict(
            f"The store address '{store_slug}' is already in use.",
            code="store_slug_taken",
            fields={"store_slug": ["This address is already in use. Choose another one."]},
        )
    user.store_slug, user.store_bio = store_slug, store_bio
    try:
        with transaction.atomic():
            user.save(update_fields=["store_slug", "store_bio"])
    except IntegrityError:
        raise Conflict(
            f"The store address '{store_slug}' is already in use.",
            code="store_slug_taken",
            fields={"store_slug": ["This address is already in use. Choose another one."]},
        ) from None
    return user


def seller_profile_update(
    *,
    user: User,
    name: str,
    support_email: str,
    time_zone: str | None = None,
    dispute_revokes_access: bool | None = None,
    notify_on_sale: bool | None = None,
) -> User:
    """The seller's display name (shown to buyers at checkout), the address buyers write to, and
    whether a dispute suspends the buyer's access (None keeps each optional setting as it is)."""
    errors: dict[str, list[str]] = {}
    name = name.strip()
    if not name:
        errors["name"] = ["Enter the name buyers see."]
    elif len(name) > User._meta.get_field("name").max_length:  # type: ignore[operator]
        errors["name"] = ["At most 150 characters."]
    support_email = support_email.strip().lower()
    if support_email:
        from django.core.validators import validate_email

        try:
            validate_email(support_email)
        except ValidationError:
            errors["support_email"] = ["Enter a valid email address."]
    if time_zone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = ["Choose a time zone such as Europe/Berlin or Asia/Dhaka."]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], fields=errors)
    user.name, user.support_email = name, support_email
    fields = ["name", "support_email"]
    if time_zone is not None:
        user.time_zone = time_zone
        fields.append("time_zone")
    if dispute_revokes_access is not None:
        user.dispute_revokes_access = bool(dispute_revokes_access)
        fields.append("dispute_revokes_access")
    if notify_on_sale is not None:
        user.notify_on_sale = bool(notify_on_sale)
        fields.append("notify_on_sale")
    user.save(update_fields=fields)
    return user


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(*, user: User, name: str) -> tuple[APIKey, str]:
    """Returns the key and its secret; the secret is never stored and cannot be shown again."""
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = APIKey.objects.create(user=user, name=name, prefix=raw[:10], hashed_key=hash_api_key(raw))
    return key, raw


def api_key_revoke(*, user: User, key_id: str) -> None:
    updated = APIKey.objects.filter(user=user, id=key_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if not updated:
        raise NotFound("API key not found.")


def api_key_find(raw_key: str) -> APIKey | None:
    """The live key a raw ``sk_`` value names (its user active), its last use noted; else None.
    The key itself, not only its user, so that what is done with it can name it (audit events)."""
    key = (
        APIKey.objects.select_related("user")
        .filter(hashed_key=hash_api_key(raw_key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        APIKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_key_authenticate(raw_key: str) -> User | None:
    key = api_key_find(raw_key)
    return key.user if key is not None else None


# --- Tokens (JWT) ----------------------------------------------------------------------------------
#
# A sign-in answers an access token (15 minutes) and a refresh token (7 days). Both carry a digest of
# the password hash they were issued under (simplejwt's CHECK_REVOKE_TOKEN): once the password
# changes, by a reset, in the admin or any other way, every token issued before it is refused, by the
# JWT authentication and by the refresh below. A refresh token works once (it is blacklisted as it
# is used, and a new one answered). Seller API keys (``sk_``) are not JWTs and outlive a password
# change: each is revoked on its own (``api_key_revoke``).


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def _invalid_refresh_token() -> ApplicationError:
    return ApplicationError("The refresh token is invalid or expired.", code="invalid_token", status_code=401)


def user_tokens_issue(*, user: User) -> TokenPair:
    """A new pair for ``user``. The refresh token is listed (``OutstandingToken``: its id, user and
    expiry, so that it can be blacklisted) but its text is not kept: a copy of the database signs
    nobody in."""
    with transaction.atomic():
        refresh = RefreshToken.for_user(user)
        OutstandingToken.objects.filter(jti=refresh[jwt_settings.JTI_CLAIM]).update(token="")
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def user_tokens_refresh(*, refresh: str) -> TokenPair:
    """Swaps a refresh token for a new pair, once. Refused (401 ``invalid_token``) when the token is
    bad, expired, already used, its user is gone or inactive, or the password changed since it was
    issued. "Used once" holds under concurrency: the blacklist row is unique per token, so of two
    requests with one token only the first one's insert succeeds."""
    try:
        # signature, expiry, type, and not blacklisted (simplejwt types the encoded token as a Token)
        old = RefreshToken(refresh)  # type: ignore[arg-type]
    except TokenError:
        raise _invalid_refresh_token() from None
    user = User.objects.filter(id=str(old.get(jwt_settings.USER_ID_CLAIM, "")), is_active=True).first()
    if user is None or old.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
        raise _invalid_refresh_token()
    try:
        with transaction.atomic():
            listed, _ = OutstandingToken.objects.get_or_create(
                jti=old[jwt_settings.JTI_CLAIM],
                defaults={"user": user, "token": "", "expires_at": datetime_from_epoch(old["exp"])},
            )
            BlacklistedToken.objects.create(token=listed)
            return user_tokens_issue(user=user)
    except IntegrityError:
        raise _invalid_refresh_token() from None


def user_tokens_revoke(*, user: User) -> int:
    """Blacklists every refresh token of ``user`` that is still live (after a password reset: the
    digest check already refuses them; this also shows it in the admin's list of tokens). Returns
    how many."""
    live = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True)
    created = BlacklistedToken.objects.bulk_create([BlacklistedToken(token=t) for t in live], ignore_conflicts=True)
    return len(created)


def tokens_flush_expired() -> int:
    """Forgets refresh tokens past their expiry (and their blacklist rows): an expired token is
    refused on its own, and every sign-in and refresh lists one more. Returns how many."""
    _, deleted = OutstandingToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted.get(OutstandingToken._meta.label, 0)


# --- Proving an email address ----------------------------------------------------------------------
# A signed token naming the account and the address it was sent to, valid for a few days. Opening it
# proves the address; an account whose email changed since cannot use an old token.

EMAIL_VERIFY_SALT = "accounts.verify-email"
EMAIL_VERIFY_MAX_AGE_SECONDS = 3 * 24 * 3600
EMAIL_VERIFY_EVERY_SECONDS = 60  # at most one email a minute per account


def email_verification_request(*, user: User) -> bool:
    """Queues the verification email (once a minute at most); False when the address is already
    verified or an email went out a moment ago."""
    if user.email_verified:
        return False
    if not cache.add(f"verify-email:{user.id}", 1, EMAIL_VERIFY_EVERY_SECONDS):
        return False
    send_email_verification.delay_on_commit(user.id)  # type: ignore[attr-defined]
    return True


def email_verification_token(*, user: User) -> str:
    return signing.dumps({"u": user.id, "e": user.email}, salt=EMAIL_VERIFY_SALT)


def email_verification_send(*, user_id: str) -> bool:
    from .emails import build_email_verification_email

    user = User.objects.filter(id=user_id, is_active=True).first()
    if user is None or user.email_verified:
        return False
    build_email_verification_email(user, email_verification_token(user=user)).send(fail_silently=False)
    return True


def email_verify(*, token: str) -> User:
    """Marks the address the token was sent to as the account's verified email. 400 for a token
    that is forged, expired, or for an address the account no longer has."""
    invalid = ValidationFailed(
        "This verification link is invalid or has expired.", fields={"token": ["Invalid or expired."]}
    )
    try:
        payload = signing.loads(token, salt=EMAIL_VERIFY_SALT, max_age=EMAIL_VERIFY_MAX_AGE_SECONDS)
    except signing.BadSignature:  # (SignatureExpired is one)
        raise invalid from None
    if not isinstance(payload, dict):
        raise invalid
    user = User.objects.filter(id=payload.get("u"), email=payload.get("e"), is_active=True).first()
    if user is None:
        raise invalid
    if user.verified_email != user.email:
        User.objects.filter(pk=user.pk).update(verified_email=user.email)
        user.verified_email = user.email
    return user
