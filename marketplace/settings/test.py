"""Settings for the test suite: the embedded default, or PostgreSQL + Redis when DATABASE_URL and
REDIS_URL are set."""

import os

from .local import *  # noqa: F403
from .local import DATABASES, THROTTLE_RATES, VAR_DIR, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
STORAGES = {  # noqa: F405
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a live server and a real worker process can share it.
    # One file per test run, so that runs side by side never share (or delete) each other's database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}

# The suite makes many requests from one address; throttling has its own test with its own rates.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {
        **THROTTLE_RATES,
        **{
            scope: "100000/minute"
            for scope in ("auth", "checkout", "pay", "polling", "licenses", "free_claim_ip", "free_claim_email")
        },
    },
}
