from celery import shared_task

from suppliers import services


@shared_task(name="suppliers.tasks.certificates_expire", acks_late=True)
def certificates_expire() -> int:
    """Periodic (Celery beat): expire certificates whose validity has ended. Idempotent."""
    return services.certificates_expire()
