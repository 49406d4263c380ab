from orders.tests.conftest import seller, text_product  # noqa: F401
