from typing import Any

from rest_framework.permissions import BasePermission


class IsSeller(BasePermission):
    message = "Only sellers can do this."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "role", None) == "seller")


def request_seller(request: Any) -> Any:
    """The signed-in seller of a request that ``IsSeller`` has already let through."""
    return request.user
