"""Serializers that describe, for the OpenAPI schema, what the payments API answers."""

from rest_framework import serializers


class WebhookAckDoc(serializers.Serializer):
    """A gateway's event was received (stored once, then processed, or a repeat)."""

    received = serializers.BooleanField()
    event_id = serializers.CharField()
    status = serializers.CharField()
    duplicate = serializers.BooleanField()
