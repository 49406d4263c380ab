import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

from marketplace.core.errors import ApplicationError, NotFound, ValidationFailed
from marketplace.core.ids import make_id

from .models import APIKey, Role, User
from .tasks import send_registration_attempt_email

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
