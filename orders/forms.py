from typing import Any

from django import forms


class CheckoutForm(forms.Form):
    buyer_email = forms.EmailField(label="Email", max_length=254)
    variant_id = forms.ChoiceField(label="Option")
    quantity = forms.IntegerField(min_value=1, max_value=1000, initial=1)
    idempotency_key = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def __init__(self, *args: Any, variants: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["variant_id"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101 - narrows the type
        field.choices = [(v.id, v.name) for v in variants]
        if len(variants) == 1:
            field.initial = variants[0].id
            field.widget = forms.HiddenInput()
