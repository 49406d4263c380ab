import hashlib
import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.core.errors import Conflict, NotFound, ValidationFailed

from .models import APIKey, Role, User

API_KEY_PREFIX = "sk_"


def user_register(*, email: str, password: str, name: str, role: str) -> User:
    email = email.strip().lower()
    if role not in Role.values:
        raise ValidationFailed(fields={"role": [f"Must be one of: {', '.join(Role.values)}."]})
    candidate = User(email=email, name=name, role=role)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationFailed(exc.messages[0], fields={"password": list(exc.messages)}) from None
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict("An account with this email already exists.", code="email_taken")
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, name=name, role=role)
    except IntegrityError:
        raise Conflict("An account with this email already exists.", code="email_taken") from None


def seller_profile_update(*, user: User, name: str, support_email: str, time_zone: str | None = None) -> User:
    """The seller's display name (shown to buyers at checkout) and the address buyers write to."""
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
