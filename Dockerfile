# The marketplace image: web (gunicorn), worker and beat all run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=marketplace.settings.production \
    VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

RUN useradd --create-home --uid 10001 app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# collectstatic with the production storage (hashed, compressed files and a manifest). Production
# settings refuse to import without their secrets, so this one step gets throwaway values that
# exist only in this RUN's environment, never in the image.
RUN SECRET_KEY="build-only-$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    FERNET_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    CODE_HASH_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(48))')" \
    STRIPE_SECRET_KEY="sk_build_$(python -c 'import secrets; print(secrets.token_hex(16))')" \
    STRIPE_WEBHOOK_SECRET="whsec_$(python -c 'import secrets; print(secrets.token_hex(16))')" \
    DATABASE_URL=postgres://build@localhost:5432/build \
    REDIS_URL=redis://localhost:6379/0 \
    SITE_URL=https://build.invalid \
    ALLOWED_HOSTS=build.invalid \
    AWS_STORAGE_BUCKET_NAME=build \
    EMAIL_HOST=localhost \
    python manage.py collectstatic --noinput \
    && mkdir -p "$VAR_DIR" \
    && chown -R app:app "$VAR_DIR"

USER app
EXPOSE 8000

CMD ["gunicorn", "marketplace.wsgi", "--bind", "0.0.0.0:8000"]
