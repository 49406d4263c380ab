"""The hosted checkout's form: the same fields as the pay API."""

from typing import Any

from django import forms

from orders.serializers import MAX_QUANTITY


class CheckoutForm(forms.Form):
    variant_id = forms.ChoiceField(label="Option", widget=forms.RadioSelect)
    quantity = forms.IntegerField(label="Quantity", min_value=1, max_value=MAX_QUANTITY, initial=1)
    discount_code = forms.CharField(label="Discount code", required=False, max_length=64)
    buyer_email = forms.EmailField(
        label="Email",
        max_length=254,
        help_text="Your receipt and your purchase are sent here.",
    )
    recipient_email = forms.EmailField(
        label="Recipient's email (optional, for a gift)",
        required=False,
        max_length=254,
        help_text="Leave empty to keep it for yourself. A gift is delivered to the recipient, with you in copy.",
    )
    # partner_api products only: what the seller's fulfillment needs to know (sent as
    # ``fulfillment_input: {"player_id": ...}``, exactly as the pay API would take it).
    player_id = forms.CharField(
        label="Player / account ID",
        required=False,
        max_length=120,
        help_text="Where the seller delivers your purchase, e.g. your in-game player ID.",
    )
    idempotency_key = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    # The enabled gateways that take the product's currency (checkout.services.payment_methods_for);
    # none sent means the default one.
    payment_method = forms.ChoiceField(label="Pay with", required=False, widget=forms.RadioSelect)

    def __init__(
        self,
        *args: Any,
        variants: list[Any],
        asks_player_id: bool = False,
        payment_methods: list[dict[str, str]] | None = None,
        player_id_label: str = "",
        player_id_help: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        method = self.fields["payment_method"]
        assert isinstance(method, forms.ChoiceField)  # noqa: S101 - narrows the type
        method.choices = [(m["name"], m["label"]) for m in payment_methods or []]
        if asks_player_id and player_id_label:  # the seller's own words for what they need
            self.fields["player_id"].label = player_id_label
            self.fields["player_id"].help_text = player_id_help
        field = self.fields["variant_id"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101 - narrows the type
        field.choices = [(v.id, v.name) for v in variants]
        if variants:
            field.initial = variants[0].id
        if not asks_player_id:
            del self.fields["player_id"]

    def clean_discount_code(self) -> str:
        return str(self.cleaned_data.get("discount_code") or "").strip()

    def clean_player_id(self) -> str:
        return str(self.cleaned_data.get("player_id") or "").strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        buyer, recipient = data.get("buyer_email"), data.get("recipient_email")
        if buyer and recipient and buyer.lower() == recipient.lower():
            data["recipient_email"] = ""  # a gift to oneself is just a purchase
        return data
