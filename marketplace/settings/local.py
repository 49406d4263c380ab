"""The embedded default: SQLite, a filesystem broker, local private storage, emails as files in var/mail/.

Needs no environment variables; every setting can still be overridden from the environment.
"""

from . import embedded_secrets
from .base import *  # noqa: F403
from .base import VAR_DIR, env

DEBUG = env.bool("DEBUG", default=True)
# Development secrets, fixed so sessions survive restarts. They are published (embedded_secrets), so
# production refuses them and starts only with its own.
SECRET_KEY = env.str("SECRET_KEY", default=embedded_secrets.SECRET_KEY)
SANDBOX_WEBHOOK_SECRET = env.str("SANDBOX_WEBHOOK_SECRET", default=embedded_secrets.SANDBOX_WEBHOOK_SECRET)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])

for folder in (
    "",
    "staticfiles",
    "broker/queue",
    "broker/processed",
    "broker/control",
    "media/private",
    "media/public",
    "mail",
):
    (VAR_DIR / folder).mkdir(parents=True, exist_ok=True)
# Development-only Fernet key (for encrypted codes); production requires FERNET_KEYS.
FERNET_KEYS = env.list("FERNET_KEYS", default=list(embedded_secrets.FERNET_KEYS))
CODE_HASH_KEY = env.str("CODE_HASH_KEY", default=embedded_secrets.CODE_HASH_KEY)
PARTNER_ALLOW_HTTP = env.bool("PARTNER_ALLOW_HTTP", default=True)
# Webhooks to http://127.0.0.1 and other local receivers while developing.
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=True)
DEMO_PARTNER_ENABLED = env.bool("DEMO_PARTNER_ENABLED", default=True)
# Every email (receipts with their codes, sign-in links) is written to a file in var/mail/
# (EMAIL_FILE_PATH): readable when wanted, and never mixed into the server's output, where it would put
# buyers' codes and sign-in links into whatever collects that output.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
