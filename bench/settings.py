"""Settings of the gunicorn server and the Celery worker that the service benchmarks start (and of
the benchmark process that drives them): the embedded default's, on the ``DATABASE_URL`` and
``REDIS_URL`` the benchmark hands over, with

* ``ROOT_URLCONF = "bench.urls"``: the app's URLs plus the benchmark's own minimal endpoint, which
  therefore never exists in the app's URLs;
* ``DEBUG = False``, as in production (with ``DEBUG`` Django keeps every query in memory);
* throttling rates high enough never to answer 429 — every client of a benchmark comes from one
  address — while the throttle itself still runs (a cache increment per request);
* the Celery queue named by ``CELERY_TASK_DEFAULT_QUEUE`` (one of the run's own, so that no other
  worker on the same Redis takes its tasks) and a Redis result backend for the no-op task's round
  trip (``CELERY_RESULT_BACKEND``; the app's own tasks keep ignoring results);
* e-mail kept in memory: the delivery e-mail is rendered and "sent", with no SMTP server to wait for.
"""

from typing import cast

from marketplace.settings.local import *  # noqa: F403
from marketplace.settings.local import REST_FRAMEWORK, env

DEBUG = False
ROOT_URLCONF = "bench.urls"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        scope: "10000000/minute" for scope in cast(dict[str, str], REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    },
}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
