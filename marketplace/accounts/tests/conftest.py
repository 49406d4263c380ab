from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def fresh_throttles(db: Any) -> Iterator[None]:
    """The auth endpoints are rate limited through the cache; each test starts with a clean slate."""
    cache.clear()
    yield
    cache.clear()
