# The site's one image: daphne workers and the migrate job run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are collected at build time and served by whitenoise.
# The media volume (docker-compose.yml) takes this directory's owner when first mounted.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v 0 \
    && useradd --system --uid 10001 --home-dir /app chat \
    && mkdir -p /app/var/media && chown chat /app/var/media

USER chat
EXPOSE 8000
# The workers' one entry, as `make run` and docker-compose.yml start it.
CMD ["deploy/daphne.sh", "--proxy-headers", "-b", "0.0.0.0", "-p", "8000"]
