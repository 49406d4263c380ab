"""The dashboard's sign-in and the one gate every seller page passes (``seller_required``)."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.decorators import method_decorator

from marketplace.core.ratelimit import throttle_page

View = Callable[..., HttpResponseBase]  # a page, or a streamed download


# --- Sign-in -------------------------------------------------------------------------------------


class EmailAuthenticationForm(AuthenticationForm):
    """Django's sign-in form with the email address as the user name.

    The page posts ``email``; ``username`` (what Django's own forms and tests post) works too.
    """

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    def __init__(self, request: HttpRequest | None = None, *args: Any, **kwargs: Any) -> None:
        data = kwargs.get("data")
        if data is not None and "username" not in data and "email" in data:
            data = data.copy()
            data["username"] = data["email"]
            kwargs["data"] = data
        super().__init__(request, *args, **kwargs)

    def clean_username(self) -> str:
        # Addresses are stored in lower case (UserManager); sign-in should not depend on case.
        return str(self.cleaned_data["username"]).strip().lower()


@method_decorator(throttle_page("auth"), name="dispatch")
class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django's default since 5.0); goes to ``LOGOUT_REDIRECT_URL``."""


# --- Access --------------------------------------------------------------------------------------


def seller_required(view: View) -> View:
    """Signed-in sellers only: anonymous visitors go to the sign-in page, anyone else gets a 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not getattr(request.user, "is_seller", False):
            return render(request, "dashboard/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/not_found.html", status=404)
