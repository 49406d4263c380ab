"""What the catalog tells the order side, without importing it (catalog sits below orders).

When a seller uploads a new file to a product, earlier buyers must download the new file too (shared
``API.md``: "Uploading a new file to a product makes it what earlier buyers download too"). The order
items hold what they deliver, so the catalog announces the replacement here and the orders app, which
binds a listener at start-up (``orders/apps.py``), re-points the items that delivered the old file.
The listener runs in the caller's transaction: the product and its buyers' items change together.
"""

from typing import Protocol


class FileReplacedListener(Protocol):
    def __call__(self, *, product_id: str, old_key: str, new_key: str) -> int: ...


_listeners: list[FileReplacedListener] = []


def bind_file_replaced(listener: FileReplacedListener) -> None:
    """Registers a listener (once: binding the same one again changes nothing)."""
    if listener not in _listeners:
        _listeners.append(listener)


def product_file_replaced(*, product_id: str, old_key: str, new_key: str) -> int:
    """Tells every listener that ``old_key`` was replaced by ``new_key`` on the product; returns how
    many deliveries followed (the sum of what the listeners answer)."""
    if not old_key or not new_key or old_key == new_key:
        return 0
    return sum(listener(product_id=product_id, old_key=old_key, new_key=new_key) for listener in _listeners)
