# One image for every service; the command chooses the service:
#   docker run IMAGE python -m webhook        # MX webhook receiver, port WEBHOOK_PORT (8080)
#   docker run IMAGE python -m worker run     # pgmq worker, metrics on WORKER_METRICS_PORT (9464)
#   docker run IMAGE python -m dashboard      # staff dashboard, port DASHBOARD_PORT (8090)
#   docker run IMAGE python -m worker --help  # the operator command line
# Settings come from the environment (README "Settings"; docs/deploy.md). The image holds the
# project's wheel (common, webhook, worker, dashboard) and its dependencies, never the tests,
# scripts or the MX stand-in. tests/integration/test_image.py repeats these steps without
# Docker: build the wheel, install it into a clean virtualenv, start each service from it.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# the dashboard's front-end libraries, pinned in package-lock.json (no build step, no CDN)
FROM node:20-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    WEBHOOK_HOST=0.0.0.0 \
    WEBHOOK_METRICS_HOST=0.0.0.0 \
    WORKER_METRICS_HOST=0.0.0.0 \
    DASHBOARD_HOST=0.0.0.0 \
    DASHBOARD_STATIC_DIR=/opt/vendor
COPY --from=build /dist/ /dist/
COPY --from=assets /src/node_modules/htmx.org/dist/ /opt/vendor/htmx.org/dist/
COPY --from=assets /src/node_modules/htmx-ext-sse/dist/ /opt/vendor/htmx-ext-sse/dist/
COPY --from=assets /src/node_modules/@picocss/pico/css/ /opt/vendor/@picocss/pico/css/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir /dist/*.whl \
    && rm -rf /dist \
    && useradd --system --uid 10001 --home-dir /home/app --create-home app
USER app
WORKDIR /home/app
EXPOSE 8080 8090 9464
CMD ["python", "-m", "webhook"]
