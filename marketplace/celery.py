"""The Celery application. Tasks live in each app's ``tasks.py`` and are discovered."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.local")

# Every task carries the request id of the request that queued it, and logs under it (and its order).
app = Celery("marketplace", task_cls="marketplace.core.log_context:ContextTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
