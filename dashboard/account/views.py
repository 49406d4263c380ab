"""The seller's account pages: sign-up (through ``user_register``, the same service as the API) and
password reset by email (Django's own views, with our templates)."""

from typing import Any

from axes.utils import reset as axes_reset
from django import forms
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from marketplace.accounts.models import Role
from marketplace.accounts.services import user_register, user_tokens_revoke
from marketplace.core.errors import ApplicationError
from marketplace.core.ratelimit import throttle_page

AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"


class SignupForm(forms.Form):
    """Shapes only; the rules (password validators) are ``user_register``'s."""

    name = forms.CharField(label="Your name or shop name", max_length=150)
    email = forms.EmailField(label="Email", max_length=254)
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput, max_length=128)

    def apply_error(self, exc: ApplicationError) -> None:
        """The service's message next to the field it names."""
        fields = dict(exc.fields or {})
        placed = False
        for name, messages in fields.items():
            if name in self.fields:
                for message in messages:
                    self.add_error(name, message)
                placed = True
        if not placed:
            self.add_error(None, exc.message)


@require_http_methods(["GET", "POST"])
@throttle_page("auth")
def signup(request: HttpRequest) -> HttpResponse:
    """Creates a seller account, signs the seller in and opens the dashboard.

    An address that already has an account gets the same redirect (nobody is signed in, so the
    dashboard asks to sign in) and its owner an email saying so, never "this email is taken": the
    page does not tell a stranger which addresses have accounts (see ``user_register``)."""
    if request.user.is_authenticated:
        return HttpResponseRedirect(reverse("dashboard"))
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            registration = user_register(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                name=form.cleaned_data["name"].strip(),
                role=Role.SELLER,
            )
        except ApplicationError as exc:
            form.apply_error(exc)
        else:
            if registration.user is not None:
                login(request, registration.user, backend=AUTH_BACKEND)
            target = request.POST.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = reverse("dashboard-products")
            return HttpResponseRedirect(target)
    return render(request, "registration/signup.html", {"form": form, "next": request.GET.get("next", "")})


# --- Password reset --------------------------------------------------------------------------------


class EmailPasswordResetForm(PasswordResetForm):
    """Django's form; the address is compared in lower case, as accounts store it."""

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip().lower()


@method_decorator(throttle_page("auth"), name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    """Always answers "check your inbox", whether or not the address has an account."""

    form_class = EmailPasswordResetForm
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    html_email_template_name = "registration/password_reset_email.html"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        """A new password lifts a sign-in lock-out for this email: proving the mailbox is enough. It
        also ends what the old password opened: every session (Django's session hash follows the
        password) and every API token (their password digest no longer matches; the refresh tokens
        are blacklisted too). Seller API keys stay valid."""
        response = super().form_valid(form)
        axes_reset(username=self.user.email.lower())
        user_tokens_revoke(user=self.user)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"
