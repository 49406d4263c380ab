from django.urls import path

from . import api

urlpatterns = [
    path("auth/register", api.RegisterApi.as_view(), name="auth-register"),
    path("auth/token", api.TokenApi.as_view(), name="auth-token"),
    path("auth/token/refresh", api.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/verify-email", api.EmailVerifyRequestApi.as_view(), name="auth-verify-email"),
    path("auth/verify-email/confirm", api.EmailVerifyConfirmApi.as_view(), name="auth-verify-email-confirm"),
    path("api-keys", api.APIKeyListApi.as_view(), name="api-keys"),
    path("api-keys/<str:key_id>", api.APIKeyDetailApi.as_view(), name="api-key-detail"),
]
