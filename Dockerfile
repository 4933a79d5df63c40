# Image for the payflow app services in docker-compose.yml (api, worker, ledger, dashboard,
# migrate). Development and CI use `payflow services up` instead; see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PAYFLOW_HOME=/home/payflow/.payflow

WORKDIR /app
COPY . .
RUN pip install . && useradd --create-home --uid 1000 payflow
USER payflow

CMD ["payflow", "--help"]
