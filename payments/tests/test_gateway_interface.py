import pytest

from orders.fulfillment import DeliveryStrategy, available_types, get_strategy
from payments.gateways import GATEWAYS, PaymentGateway


def test_a_gateway_missing_part_of_the_interface_cannot_be_built():
    class HalfGateway(PaymentGateway):
        name = "half"

        def create_checkout(self, *, payment, order, return_url):  # type: ignore[override]
            raise AssertionError

    with pytest.raises(TypeError, match="refund"):
        HalfGateway()  # type: ignore[abstract]
    assert {"sandbox", "stripe", "bkash", "sslcommerz"} <= set(GATEWAYS)
    assert all(isinstance(cls(), PaymentGateway) for cls in GATEWAYS.values())


def test_every_delivery_type_implements_the_strategy_interface():
    assert available_types() == ["file", "link", "text", "code_pool", "license_key", "partner_api"]
    assert all(isinstance(get_strategy(name), DeliveryStrategy) for name in available_types())
