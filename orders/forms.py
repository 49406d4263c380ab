"""The buyer's library sign-in form (the checkout form lives in ``checkout.forms``)."""


from django import forms


class LibraryRequestForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254, help_text="The email you bought with.")
