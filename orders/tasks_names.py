"""The registered names of the orders' Celery tasks, for queueing by name (``marketplace.core.queue``):
the services never import ``orders.tasks``, which imports them. A name is what queued messages carry,
so it never changes (``fulfil_order`` keeps the spelling it was first registered with)."""

FULFILL_TASK = "orders.tasks.fulfil_order"
SEND_GIFT = "orders.tasks.send_gift"
SALE_NOTIFY_TASK = "orders.tasks.notify_seller_of_sale"
