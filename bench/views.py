"""The benchmarks' minimal endpoint: the ceiling of the stack (gunicorn, Django's middleware, one
PostgreSQL write) that a real endpoint is compared with. Served only under ``bench.settings``."""

import secrets
from datetime import timedelta

from django.contrib.sessions.models import Session
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def insert_one_row(request: HttpRequest) -> JsonResponse:
    """Inserts one row (a session row: a table with no foreign key) and answers in the API's envelope."""
    row = Session.objects.create(
        session_key=secrets.token_hex(16), session_data="", expire_date=timezone.now() + timedelta(hours=1)
    )
    return JsonResponse({"success": True, "data": {"id": row.session_key}}, status=201)
