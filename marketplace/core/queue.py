"""Queue a Celery task by its registered name, so that a service never imports a ``tasks`` module.

Tasks call services; if services also imported tasks, the two would import each other (the cycle
that used to be held together by imports inside function bodies). Looking the task up by name in
the running Celery app breaks it (Polar enqueues its jobs by name the same way). It is the Task
object's own ``delay``/``delay_on_commit`` that runs, never ``send_task``: the task's options,
``CELERY_TASK_ALWAYS_EAGER`` in tests, and anything that patches ``<module>.<task>.delay`` all hold.
"""

import importlib
import importlib.util
import threading
from typing import Any, cast

from celery import current_app
from celery.contrib.django.task import DjangoTask
from django.apps import apps

# Celery's lazy discovery is not thread-safe: while one thread of a threaded server imports the apps'
# ``tasks`` modules, another that asks finds the discovery under way, returns at once and misses the task.
_discovery = threading.Lock()


class UnknownTask(LookupError):
    """No task of that name is registered: a typo, or the app that defines it is not installed."""


def _import_task_modules() -> None:
    """Imports each installed app's ``tasks`` module, which registers its tasks. Not Celery's
    ``import_default_modules``: that sends ``import_modules``, on which Celery's Django fix-up runs
    ``django.setup()`` again, and with it ``LOGGING`` (every handler added since start-up is dropped)."""
    for config in apps.get_app_configs():
        name = f"{config.name}.tasks"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def task_for(task_name: str) -> DjangoTask:  # type: ignore[type-arg]
    """The registered task called ``task_name`` (e.g. ``"orders.tasks.fulfil_order"``): a task of
    the app's task class (``ContextTask``, a Django task, so it has ``delay_on_commit``)."""
    if task_name not in current_app.tasks:
        # Apps' ``tasks`` modules are discovered lazily: a worker imports them when it starts, a web
        # process only when asked. Nothing may depend on someone having imported the module first.
        with _discovery:
            if task_name not in current_app.tasks:
                _import_task_modules()
    try:
        task = current_app.tasks[task_name]
    except KeyError:
        raise UnknownTask(f"No Celery task is registered as {task_name!r}.") from None
    return cast(DjangoTask, task)  # type: ignore[type-arg]


def enqueue(task_name: str, *args: Any, **kwargs: Any) -> Any:
    """Sends the task to the broker now (``Task.delay``); the broker's errors reach the caller."""
    return task_for(task_name).delay(*args, **kwargs)


def enqueue_on_commit(task_name: str, *args: Any) -> None:
    """Sends the task once the current transaction commits, and not at all if it rolls back
    (``Task.delay_on_commit``). Task arguments are ids, so a rolled-back row is never looked for."""
    task_for(task_name).delay_on_commit(*args)
