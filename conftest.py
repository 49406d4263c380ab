"""Shared fixtures for the whole suite."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

# Records every log record of the run and fails it if one holds a secret the suite made.
pytest_plugins = ["tests.campaign.secrets_plugin"]


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters and re-check markers live in the cache; no test sees another's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()
