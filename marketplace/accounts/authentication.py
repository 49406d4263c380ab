from typing import Any

from rest_framework import authentication, exceptions

from .services import API_KEY_PREFIX, api_key_find


class APIKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer sk_...``. Other bearer tokens are left to the JWT authenticator.

    A key is not a JWT: it does not end when its seller's password changes (JWTs do, see
    ``services.user_tokens_issue``). An integration keeps working through a password reset; a key
    that may have leaked is revoked on its own (``DELETE /api/v1/api-keys/{id}``)."""

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        parts = header.split()
        if len(parts) != 2 or parts[0] != self.keyword or not parts[1].startswith(API_KEY_PREFIX):
            return None
        key = api_key_find(parts[1])
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        return key.user, key  # ``request.auth`` is the APIKey: audit events name the key used

    def authenticate_header(self, request: Any) -> str:
        return self.keyword
