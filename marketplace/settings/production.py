"""Production: PostgreSQL, Redis, S3-compatible storage, SMTP. Refuses to start without secrets."""

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from . import embedded_secrets
from .base import *  # noqa: F403
from .base import env, sibling_redis_db


def _required(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in production.")
    _refuse_published(name, value)
    return value


def _refuse_published(name: str, *values: str) -> None:
    """The embedded default's secrets are in the repository (``embedded_secrets``): with one of
    them, anyone could sign sessions, decrypt codes or forge webhooks. Refused in every setting."""
    if any(value.strip() in embedded_secrets.PUBLISHED_VALUES for value in values):
        raise ImproperlyConfigured(
            f"{name} holds a secret the repository publishes for the embedded default; production needs its own."
        )


DEBUG = False
SECRET_KEY = _required("SECRET_KEY")
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("dev-only"):
    raise ImproperlyConfigured("SECRET_KEY must be a long random value in production.")
# Old keys that still verify (sessions, password-reset and download links) while SECRET_KEY rotates.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
_refuse_published("SECRET_KEY_FALLBACKS", *SECRET_KEY_FALLBACKS)
FERNET_KEYS = [k.strip() for k in _required("FERNET_KEYS").split(",") if k.strip()]
_refuse_published("FERNET_KEYS", *FERNET_KEYS)
for _key in FERNET_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured("FERNET_KEYS must be a comma-separated list of Fernet keys.") from None
# The keyed hash (blind index) that finds duplicate codes without decrypting them.
CODE_HASH_KEY = _required("CODE_HASH_KEY")
if len(CODE_HASH_KEY) < 32:
    raise ImproperlyConfigured("CODE_HASH_KEY must be at least 32 random characters.")
PARTNER_ALLOW_HTTP = False
DEMO_PARTNER_ENABLED = False
# Outgoing webhooks never go to private, loopback or link-local addresses in production (SSRF).
if env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False):
    raise ImproperlyConfigured("WEBHOOK_ALLOW_PRIVATE_URLS must not be set in production.")
WEBHOOK_ALLOW_PRIVATE_URLS = False
# --- Payment gateways ---------------------------------------------------------------------------
# Stripe, when enabled, must be able to verify its webhooks.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
_refuse_published("STRIPE_SECRET_KEY or STRIPE_WEBHOOK_SECRET", STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET)
# Without a list, Stripe once it is configured, else the sandbox (refused below unless on purpose).
ENABLED_PAYMENT_GATEWAYS = env.list(
    "ENABLED_PAYMENT_GATEWAYS", default=["stripe" if STRIPE_SECRET_KEY else "sandbox"]
)
if not ENABLED_PAYMENT_GATEWAYS:
    raise ImproperlyConfigured("ENABLED_PAYMENT_GATEWAYS names no gateway: buyers could not pay.")
if "stripe" in ENABLED_PAYMENT_GATEWAYS and not (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET):
    raise ImproperlyConfigured("Stripe is enabled: STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET must be set.")
# A placeholder never filled in (.env.example's replace-me) is refused here, not at the first payment.
if STRIPE_SECRET_KEY and not STRIPE_SECRET_KEY.startswith(("sk_", "rk_")):
    raise ImproperlyConfigured("STRIPE_SECRET_KEY must be a Stripe secret or restricted key (sk_... or rk_...).")
if STRIPE_WEBHOOK_SECRET and not STRIPE_WEBHOOK_SECRET.startswith("whsec_"):
    raise ImproperlyConfigured("STRIPE_WEBHOOK_SECRET must be the endpoint's signing secret (whsec_...).")
# The sandbox hands out goods for a click on "Pay": never on a real shop by accident.
SANDBOX_IN_PRODUCTION = env.bool("SANDBOX_IN_PRODUCTION", default=False)
if "sandbox" in ENABLED_PAYMENT_GATEWAYS and not SANDBOX_IN_PRODUCTION:
    raise ImproperlyConfigured(
        "The sandbox gateway is enabled (ENABLED_PAYMENT_GATEWAYS, or no other gateway configured): buyers "
        "would get goods without paying. Configure a real gateway (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET), "
        "or set SANDBOX_IN_PRODUCTION=true on purpose for a staging or demo site."
    )
# What a checkout uses when the buyer names no payment_method: one of the enabled gateways.
DEFAULT_PAYMENT_GATEWAY = env.str("DEFAULT_PAYMENT_GATEWAY", default="") or ENABLED_PAYMENT_GATEWAYS[0]
if DEFAULT_PAYMENT_GATEWAY not in ENABLED_PAYMENT_GATEWAYS:
    raise ImproperlyConfigured(
        f"DEFAULT_PAYMENT_GATEWAY={DEFAULT_PAYMENT_GATEWAY!r} is not enabled "
        f"(ENABLED_PAYMENT_GATEWAYS: {', '.join(ENABLED_PAYMENT_GATEWAYS)})."
    )
# The sandbox gateway signs its webhooks with this secret; an empty one would accept forged events.
SANDBOX_WEBHOOK_SECRET = env.str("SANDBOX_WEBHOOK_SECRET", default="")
if "sandbox" in ENABLED_PAYMENT_GATEWAYS and not SANDBOX_WEBHOOK_SECRET:
    raise ImproperlyConfigured("SANDBOX_WEBHOOK_SECRET must be set in production while the sandbox is enabled.")
_refuse_published("SANDBOX_WEBHOOK_SECRET", SANDBOX_WEBHOOK_SECRET)
ALLOWED_HOSTS = [host.strip() for host in _required("ALLOWED_HOSTS").split(",") if host.strip()]
SITE_URL = _required("SITE_URL").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

DATABASES = {"default": env.db_url_config(_required("DATABASE_URL"))}
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production.")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

REDIS_URL = _required("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        # Never the broker's database (see sibling_redis_db): a cache clear must not drop tasks.
        "LOCATION": env.str("REDIS_CACHE_URL", default="") or sibling_redis_db(REDIS_URL),
    }
}
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = False

_s3_options = {
    "bucket_name": _required("AWS_STORAGE_BUCKET_NAME"),
    "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
    "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
    "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
    "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
    "default_acl": "private",
    "querystring_auth": True,
    "file_overwrite": False,
}
STORAGES = {
    "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**_s3_options, "location": "public"}},
    "private": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            **_s3_options,
            "location": "private",
            "querystring_expire": DOWNLOAD_LINK_TTL_SECONDS,  # noqa: F405
        },
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = _required("EMAIL_HOST")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# One JSON object per line (time, level, logger, message, request_id, order_id when known, extras).
LOGGING = {
    **LOGGING,  # noqa: F405
    "filters": {"context": {"()": "marketplace.core.log_context.ContextFilter", "missing": None}},
    "formatters": {"json": {"()": "marketplace.core.log_context.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]}},
}
