from orders.tests.conftest import seller, seller_client, text_product  # noqa: F401
