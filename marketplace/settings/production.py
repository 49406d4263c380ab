"""Production: PostgreSQL, Redis, S3-compatible storage, SMTP. Refuses to start without secrets."""

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEFAULT_PAYMENT_GATEWAY, env, sibling_redis_db


def _required(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in production.")
    return value


DEBUG = False
SECRET_KEY = _required("SECRET_KEY")
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("dev-only"):
    raise ImproperlyConfigured("SECRET_KEY must be a long random value in production.")
# Old keys that still verify (sessions, password-reset and download links) while SECRET_KEY rotates.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
FERNET_KEYS = [k.strip() for k in _required("FERNET_KEYS").split(",") if k.strip()]
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
# Stripe, when enabled, must be able to verify its webhooks.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
ENABLED_PAYMENT_GATEWAYS = env.list(
    "ENABLED_PAYMENT_GATEWAYS", default=["sandbox", *(["stripe"] if STRIPE_SECRET_KEY else [])]
)
if "stripe" in ENABLED_PAYMENT_GATEWAYS and not (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET):
    raise ImproperlyConfigured("Stripe is enabled: STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET must be set.")
# The sandbox gateway signs its webhooks with this secret; an empty one would accept forged events.
SANDBOX_WEBHOOK_SECRET = (
    _required("SANDBOX_WEBHOOK_SECRET")
    if DEFAULT_PAYMENT_GATEWAY == "sandbox"
    else env.str("SANDBOX_WEBHOOK_SECRET", default="")
)
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
