"""Timeline entries read as sentences."""

import pytest

from orders.models import OrderEvent
from orders.timeline import SENTENCES, event_sentence


@pytest.mark.parametrize(
    "event,sentence",
    [
        ({"type": "status_changed", "to_status": "paid"}, "The payment was confirmed: the order is paid."),
        (
            {"type": "status_changed", "to_status": "needs_attention"},
            "The order needs your attention: an item could not be delivered.",
        ),
        ({"type": "email_sent"}, "The receipt with the delivery was emailed to the buyer."),
        ({"type": "receipt_resent"}, "The receipt was sent again."),
        ({"type": "something_new"}, "Something new."),  # an event without a sentence yet still reads as words
        (OrderEvent(type="status_changed", to_status="delivered"), "Everything in the order was delivered."),
    ],
)
def test_sentences(event, sentence):
    assert event_sentence(event) == sentence


def test_every_sentence_is_a_sentence():
    assert all(text[0].isupper() and text.endswith(".") for text in SENTENCES.values())
