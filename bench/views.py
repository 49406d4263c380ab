"""The benchmarks' minimal endpoint: the ceiling of the stack that a real endpoint is compared with.
Served only under ``bench.settings``.

It is a DRF view like ``pay``, so the comparison is fair: the same middleware, DRF's dispatch,
authentication and throttle classes, a JSON body parsed and validated by a serializer, one
``INSERT`` in a transaction, and an answer rendered in the API's envelope. What is left between
the two is ``pay``'s own work.
"""

import secrets
from datetime import timedelta

from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView


class InsertOneRowInput(serializers.Serializer):
    note = serializers.CharField(max_length=200)


class InsertOneRowApi(APIView):
    """Inserts one row (a session row: a table with no foreign key) from a JSON body."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "checkout"

    def post(self, request: Request) -> Response:
        data = InsertOneRowInput(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            row = Session.objects.create(
                session_key=secrets.token_hex(16),
                session_data=data.validated_data["note"],
                expire_date=timezone.now() + timedelta(hours=1),
            )
        return Response({"id": row.session_key}, status=status.HTTP_201_CREATED)
