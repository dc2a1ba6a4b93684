# Image for the traceability ledger: one image, three roles (web, Celery worker, Celery beat),
# chosen by the command. See docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LEDGER_VAR_DIR=/var/lib/ledger \
    MEDIA_ROOT=/var/lib/ledger/media

# The application runs as an unprivileged user; the code stays owned by root (read-only to it).
RUN groupadd --system --gid 10001 ledger \
 && useradd --system --uid 10001 --gid ledger --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin ledger

WORKDIR /app

# Dependencies first, so editing the code does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# Static files are collected into the image ($LEDGER_VAR_DIR/static, served by WhiteNoise).
# The settings need a SECRET_KEY to import; this one exists only for this build step (it is not
# an ENV, so it is not in the image). The URLs are parsed, never connected to: they keep the
# settings from creating the embedded SQLite/filesystem-broker folders in the image.
# media/ is created here so the named volume mounted over it is owned by the ledger user.
RUN SECRET_KEY=build-only-not-a-secret \
    DATABASE_URL=postgresql://build@localhost:5432/build \
    CELERY_BROKER_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput \
 && mkdir -p "$MEDIA_ROOT" \
 && chown ledger:ledger "$LEDGER_VAR_DIR" "$MEDIA_ROOT"

USER ledger

EXPOSE 8000

CMD ["gunicorn", "traceability.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", "--timeout", "120", "--access-logfile", "-", "--worker-tmp-dir", "/dev/shm"]
