from rest_framework import serializers

from .models import APIKey, Role, User


class RegisterInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    name = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class UserOutput(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "name", "role"]


class TokenInput(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False)


class RefreshInput(serializers.Serializer):
    refresh = serializers.CharField()


class APIKeyInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class APIKeyOutput(serializers.ModelSerializer):
    class Meta:
        model = APIKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at"]


class TokenOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


class RefreshOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField(help_text="The next refresh token: the one sent works only once.")
    expires_in = serializers.IntegerField()


class APIKeyCreatedOutput(APIKeyOutput):
    key = serializers.CharField(help_text="The secret key. Shown once; store it now.")

    class Meta(APIKeyOutput.Meta):
        fields = [*APIKeyOutput.Meta.fields, "key"]


class EmailVerifyInput(serializers.Serializer):
    token = serializers.CharField(max_length=500)


class EmailVerificationOutput(serializers.Serializer):
    email = serializers.EmailField()
    email_verified = serializers.BooleanField()
