"""Thin Celery tasks: they take ids and call services."""

from celery import shared_task


@shared_task(name="accounts.tasks.send_registration_attempt_email", acks_late=True)
def send_registration_attempt_email(user_id: str) -> bool:
    from .services import user_registration_attempt_notify

    return user_registration_attempt_notify(user_id=user_id)


@shared_task(name="accounts.tasks.flush_expired_tokens")
def flush_expired_tokens() -> int:
    from .services import tokens_flush_expired

    return tokens_flush_expired()


@shared_task(name="accounts.tasks.send_email_verification", acks_late=True)
def send_email_verification(user_id: str) -> bool:
    from .services import email_verification_send

    return email_verification_send(user_id=user_id)
