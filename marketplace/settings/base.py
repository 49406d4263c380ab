"""Settings shared by every environment. Everything is read from the environment.

The embedded default (``local``) needs no variables at all; ``production`` refuses to start
without its secrets.
"""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Public base URL of the site, used in links we send out (emails, redirects, webhooks).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "marketplace.core",
    "marketplace.accounts",
    "catalog",
    "orders",
    "ledger",
    "payments",
    "checkout",
    "dashboard",
    "marketplace.demo",
]

MIDDLEWARE = [
    # First: every response (redirects and errors too) answers X-Request-ID, and every log line carries it.
    "marketplace.core.log_context.RequestIdMiddleware",
    # Then: a NUL in the path, the query or a page's form is a 400 before anything reads it.
    "marketplace.core.request_guard.RefuseNulMiddleware",
    # An unknown query parameter or body field of an API operation is a 400 (its process_view).
    "marketplace.core.strict_input.StrictInputMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (pages, API, admin): see CONTENT_SECURITY_POLICY.
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a sign-in refused for too many failures into a 429 (marketplace/core/ratelimit.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "marketplace.urls"
WSGI_APPLICATION = "marketplace.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["marketplace.core.templatetags.money"],
        },
    }
]

SQLITE_PATH = env.str("SQLITE_PATH", default=str(VAR_DIR / "db.sqlite3"))
# An empty DATABASE_URL means "not set" (the embedded SQLite default), never a broken config.
DATABASES = {
    "default": env.db_url_config(env.str("DATABASE_URL", default="") or f"sqlite:///{SQLITE_PATH}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker share one file: wait for the lock instead of failing,
    # take the write lock at BEGIN so a transaction never has to upgrade it, and let readers
    # run beside the writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# Axes first: it refuses a locked-out sign-in before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# Sign-in lock-out: after AXES_FAILURE_LIMIT failures for one email from one client address, that
# pair is refused (429 with Retry-After) for the cool-off; a new failure during it starts it again.
# Per pair, so nobody can lock a seller out from elsewhere; the per-address "auth" rate limit below
# bounds guessing across many emails. A completed password reset lifts the lock.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "marketplace.core.ratelimit.axes_username"
AXES_LOCKOUT_CALLABLE = "marketplace.core.ratelimit.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are not recorded; failures are (admin: Axes)
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "marketplace.core.client_ip.client_address"  # the same address the rate limits use
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Public files only (products' cover images, in the default storage); served by ``public_media``
# from the local folder, by the storage itself (S3) in production.
MEDIA_URL = "/media/"

# Sellers' uploads are private: never served directly, only through signed, expiring links.
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT / "public")},
    },
    "private": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT / "private")},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MAX_UPLOAD_SIZE = env.int("MAX_UPLOAD_SIZE", default=200 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# How long a signed download link works; each open of an order's download button signs a fresh one.
DOWNLOAD_LINK_TTL_SECONDS = env.int("DOWNLOAD_LINK_TTL_SECONDS", default=24 * 60 * 60)


def sibling_redis_db(url: str) -> str:
    """The same Redis server, another database: the cache must never share the broker's database,
    because clearing a cache is FLUSHDB, which would drop queued and unacknowledged tasks."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{db + 1 if db < 15 else db - 1}"))


CACHES = {
    "default": env.cache_url("CACHE_URL", default="locmemcache://marketplace")
    if not env.str("REDIS_URL", default="")
    else {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("REDIS_CACHE_URL", default="") or sibling_redis_db(env.str("REDIS_URL")),
    }
}

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Marketplace <orders@marketplace.local>")

# --- REST API -------------------------------------------------------------------------------
# Behind a load balancer or reverse proxy, how many of them append to X-Forwarded-For; 0 (unset): the
# header is ignored and a client is its connection's address (marketplace/core/client_ip.py).
TRUSTED_PROXY_COUNT = max(0, env.int("TRUSTED_PROXY_COUNT", default=0))
# Per client address, in the cache (Redis in production). "checkout": the public product and its
# quote, and the checkout page; "pay": creating orders; "polling": an order's status while the
# buyer waits; "auth": registration, tokens, sign-in, sign-up and password reset.
THROTTLE_RATES = {
    "auth": env.str("RATE_AUTH", default="30/minute"),
    "checkout": env.str("RATE_CHECKOUT", default="120/minute"),
    "pay": env.str("RATE_PAY", default="30/minute"),
    "polling": env.str("RATE_POLLING", default="240/minute"),
    "licenses": env.str("RATE_LICENSES", default="60/minute"),
    # Per webhook endpoint: a seller's "send test event"; per order: "resend receipt".
    "webhook_test": env.str("RATE_WEBHOOK_TEST", default="10/minute"),
    "receipt_resend": env.str("RATE_RECEIPT_RESEND", default="3/hour"),
    "partner_test": env.str("RATE_PARTNER_TEST", default="10/minute"),
    # The library's emailed sign-in links, per address and per email asked for.
    "library_ip": env.str("RATE_LIBRARY_IP", default="20/hour"),
    "library_email": env.str("RATE_LIBRARY_EMAIL", default="5/hour"),
    # Claims of free products (a total of 0), per address and per buyer email.
    "free_claim_ip": env.str("RATE_FREE_CLAIM_IP", default="10/hour"),
    "free_claim_email": env.str("RATE_FREE_CLAIM_EMAIL", default="3/hour"),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "marketplace.accounts.authentication.APIKeyAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["marketplace.core.api.EnvelopeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "marketplace.core.parsers.JSONParser",  # depth, NUL and number bounds; see its docstring
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "marketplace.core.api.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "marketplace.core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Our throttles ask marketplace.core.client_ip; DRF's own get_ident, were it ever used, must not
    # believe a client's X-Forwarded-For either (None would: it takes the whole header).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_THROTTLE_RATES": THROTTLE_RATES,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    # A refresh token is used once: refreshing answers a new one and blacklists the old, so a copy
    # replayed later is refused. Every token carries a digest of the password hash it was issued
    # under: a new password (reset, admin, any path) ends all tokens issued before it.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "CHECK_REVOKE_TOKEN": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Marketplace API",
    "DESCRIPTION": "Sell digital goods and deliver them the moment a buyer pays.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Every asset of the API docs from drf-spectacular-sidecar: nothing from the internet (and the
    # Content-Security-Policy would refuse it). No online validator badge: its image is another host's.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "marketplace.core.schema.wrap_envelope",
    ],
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.OrderStatus",
        "ProductStatusEnum": "catalog.models.ProductStatus",
        "RoleEnum": "marketplace.accounts.models.Role",
    },
}

# --- Content-Security-Policy ----------------------------------------------------------------
# Only the site's own assets. Scripts are static files under static/ (no inline <script> and no
# inline event handler in any template), so a script injected into a page never runs; nothing is
# loaded from another host (the API docs come from drf-spectacular-sidecar); no plugins, no framing,
# no <base> to re-point relative URLs. Inline styles stay allowed: templates use style attributes,
# and Redoc and htmx inject their own <style>. No form-action: the no-script checkout posts here
# and is redirected on to the gateway's hosted page, which form-action would block.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],  # Redoc builds its search index in a worker made from a blob
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Celery ---------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem://")
    else {"visibility_timeout": 3600}
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sweep-orders": {
        "task": "orders.tasks.sweep_orders",
        "schedule": env.float("SWEEP_INTERVAL_SECONDS", default=60.0),
    },
    "sweep-webhooks": {
        "task": "orders.tasks.sweep_webhooks",
        "schedule": env.float("WEBHOOK_SWEEP_INTERVAL_SECONDS", default=60.0),
    },
    # Gifts whose deliver_at has come: the recipient's e-mail goes out within this interval of it.
    "send-due-gifts": {
        "task": "orders.tasks.send_due_gifts",
        "schedule": env.float("GIFT_SWEEP_INTERVAL_SECONDS", default=30.0),
    },
    "flush-expired-tokens": {"task": "accounts.tasks.flush_expired_tokens", "schedule": 24 * 60 * 60.0},
    # Weekly and monthly sellers' payouts: the first run of each week or month pays, later runs find the
    # period's payout and do nothing.
    "payouts-schedule": {
        "task": "ledger.tasks.payouts_schedule",
        "schedule": env.float("PAYOUT_SCHEDULE_INTERVAL_SECONDS", default=60 * 60.0),
    },
    # Stripe Connect payouts whose transfer task was lost or gave up are queued again.
    "payouts-transfer-sweep": {"task": "ledger.tasks.payouts_transfer_sweep", "schedule": 15 * 60.0},
}

# --- The marketplace ------------------------------------------------------------------------
# Keyed hash for the blind index of codes (duplicate detection); production requires its own.
CODE_HASH_KEY = env.str("CODE_HASH_KEY", default="")
# Sellers' fulfillment URLs must be https, except where explicitly allowed (local development, tests).
PARTNER_ALLOW_HTTP = env.bool("PARTNER_ALLOW_HTTP", default=False)
# The built-in demo fulfillment endpoint (/demo/partner/fulfill) behind the demo partner_api product.
DEMO_PARTNER_ENABLED = env.bool("DEMO_PARTNER_ENABLED", default=False)
PLATFORM_FEE_BPS = env.int("PLATFORM_FEE_BPS", default=500)  # 5.00 %
PLATFORM_FEE_FIXED = env.int("PLATFORM_FEE_FIXED", default=0)  # minor units, same currency
# Days a sale's earnings stay pending before they are available for payout (a seller's own
# ``payout_hold_days``, set by an operator, overrides it).
PAYOUT_HOLD_DAYS = env.int("PAYOUT_HOLD_DAYS", default=7)
ORDER_EXPIRY_MINUTES = env.int("ORDER_EXPIRY_MINUTES", default=30)
SWEEP_STUCK_AFTER_SECONDS = env.int("SWEEP_STUCK_AFTER_SECONDS", default=120)
FULFILMENT_MAX_RETRIES = env.int("FULFILMENT_MAX_RETRIES", default=5)
DEFAULT_PAYMENT_GATEWAY = env.str("DEFAULT_PAYMENT_GATEWAY", default="sandbox")
# Production refuses to start with the sandbox enabled unless this says so on purpose (a staging or
# demo site); then every sandbox page and email says that no money moves, and check --deploy warns.
SANDBOX_IN_PRODUCTION = env.bool("SANDBOX_IN_PRODUCTION", default=False)
SANDBOX_WEBHOOK_SECRET = env.str("SANDBOX_WEBHOOK_SECRET", default="")
# Where the sandbox posts its webhooks. Empty: straight to this process's webhook handler
# (the same verification path as over HTTP, with no network hop).
SANDBOX_WEBHOOK_URL = env.str("SANDBOX_WEBHOOK_URL", default="")
# Base URL of the sandbox's status API for re-verification over HTTP; empty: ask it in-process.
SANDBOX_API_URL = env.str("SANDBOX_API_URL", default="")
# Stripe (Checkout Sessions). Enabled by default once its secret key is set.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Stripe Connect payouts: the signing secret (whsec_...) of the Connect webhook endpoint
# /api/v1/payments/webhooks/stripe-connect (events of the sellers' connected accounts). Empty: Connect
# events are refused (400), and a Connect payout never leaves in_transit by itself.
STRIPE_CONNECT_WEBHOOK_SECRET = env.str("STRIPE_CONNECT_WEBHOOK_SECRET", default="")
# Base URL of Stripe's API; empty means the real one (https://api.stripe.com). Tests point it at a local fake.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
# bKash Tokenized Checkout. Enabled by naming "bkash" in ENABLED_PAYMENT_GATEWAYS. The base URL is
# bKash's public sandbox outside production; production requires it (and the credentials) set.
BKASH_SANDBOX_BASE_URL = "https://tokenized.sandbox.bka.sh/v1.2.0-beta"
BKASH_BASE_URL = env.str("BKASH_BASE_URL", default=BKASH_SANDBOX_BASE_URL)
BKASH_APP_KEY = env.str("BKASH_APP_KEY", default="")
BKASH_APP_SECRET = env.str("BKASH_APP_SECRET", default="")
BKASH_USERNAME = env.str("BKASH_USERNAME", default="")
BKASH_PASSWORD = env.str("BKASH_PASSWORD", default="")
# bKash asks merchants to wait up to 30 s for an answer (execute in particular).
BKASH_CONNECT_TIMEOUT_SECONDS = env.float("BKASH_CONNECT_TIMEOUT_SECONDS", default=5.0)
BKASH_TIMEOUT_SECONDS = env.float("BKASH_TIMEOUT_SECONDS", default=30.0)
# The sweeper asks the gateway about any payment still open after this many minutes (a lost webhook,
# a buyer who closed the tab before bKash sent them back) and settles it either way.
PAYMENT_STATUS_QUERY_AFTER_MINUTES = env.int("PAYMENT_STATUS_QUERY_AFTER_MINUTES", default=5)
# ... and stops asking once it is this old: every gateway's payment page is gone by then (Stripe's
# sessions live at most 24 hours; a bKash payment is only money once we execute it).
PAYMENT_STATUS_QUERY_FOR_HOURS = env.int("PAYMENT_STATUS_QUERY_FOR_HOURS", default=24)
# SSLCommerz (hosted page, IPN, validation API; BDT). Enabled by default once its store is set.
SSLCOMMERZ_STORE_ID = env.str("SSLCOMMERZ_STORE_ID", default="")
SSLCOMMERZ_STORE_PASSWORD = env.str("SSLCOMMERZ_STORE_PASSWORD", default="")
# Its public sandbox (https://sandbox.sslcommerz.com) outside production; the live one otherwise.
SSLCOMMERZ_SANDBOX = env.bool("SSLCOMMERZ_SANDBOX", default=True)
# Base URL of SSLCommerz's API; empty means the sandbox's or the live one's. Tests point it at a local fake.
SSLCOMMERZ_API_BASE = env.str("SSLCOMMERZ_API_BASE", default="")
# The gateways buyers may choose (an order's payment_method); adding one is a module plus a registry line.
ENABLED_PAYMENT_GATEWAYS = env.list(
    "ENABLED_PAYMENT_GATEWAYS",
    default=[
        "sandbox",
        *(["stripe"] if STRIPE_SECRET_KEY else []),
        *(["sslcommerz"] if SSLCOMMERZ_STORE_ID else []),
    ],
)
WEBHOOK_TOLERANCE_SECONDS = 5 * 60

# --- Outgoing webhooks (to sellers) ---------------------------------------------------------
# Local development and tests only: lets webhooks go to http:// and to private/loopback addresses.
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Seconds before each attempt (Standard Webhooks): now, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
WEBHOOK_RETRY_SCHEDULE = env.list(
    "WEBHOOK_RETRY_SCHEDULE", cast=float, default=[0, 5, 300, 1800, 7200, 18000, 36000, 36000]
)
# Deliveries in a row that failed every retry before an endpoint is disabled (and its seller told).
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=15)

# Readable text here; production writes one JSON object per line. The context filter puts the
# request id (and the order id, when one is known) on every record: see marketplace/core/log_context.py.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "marketplace.core.log_context.ContextFilter", "missing": "-"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The development server's access lines print each request's raw path, order ids (buyers'
        # capabilities) included: they go through our handler, whose filter redacts them.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
