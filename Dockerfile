# One image per service, from one Dockerfile: `docker build --target identity_svc .`
# Runtime only: requirements.lock pins the runtime dependencies (no ruff, mypy, pytest or
# buf: those are in requirements-dev.lock), and only gateway_common, gen/ and the service
# are copied; dev tools (devtools/, bench/, gatewayctl/) stay out.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/app:/app/gen
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock \
 && useradd --system --uid 10001 --home /app gateway
COPY gen/ gen/
COPY gateway_common/ gateway_common/
USER gateway

FROM base AS identity_svc
COPY --chown=gateway identity_svc/ identity_svc/
ENV IDENTITY_HOST=0.0.0.0
EXPOSE 50051 9101
HEALTHCHECK --interval=5s --timeout=3s --retries=10 \
  CMD ["python", "-m", "gateway_common.healthcheck", "127.0.0.1:50051"]
CMD ["python", "-m", "identity_svc"]

FROM base AS quota_svc
COPY --chown=gateway quota_svc/ quota_svc/
ENV QUOTA_HOST=0.0.0.0
EXPOSE 50052 9102
HEALTHCHECK --interval=5s --timeout=3s --retries=10 \
  CMD ["python", "-m", "gateway_common.healthcheck", "127.0.0.1:50052"]
CMD ["python", "-m", "quota_svc"]

FROM base AS history_svc
COPY --chown=gateway history_svc/ history_svc/
ENV HISTORY_HOST=0.0.0.0
EXPOSE 50053 9103
HEALTHCHECK --interval=5s --timeout=3s --retries=10 \
  CMD ["python", "-m", "gateway_common.healthcheck", "127.0.0.1:50053"]
CMD ["python", "-m", "history_svc"]

FROM base AS llm_svc
COPY --chown=gateway llm_svc/ llm_svc/
ENV LLM_HOST=0.0.0.0
EXPOSE 50054 9104
HEALTHCHECK --interval=5s --timeout=3s --retries=10 \
  CMD ["python", "-m", "gateway_common.healthcheck", "127.0.0.1:50054"]
CMD ["python", "-m", "llm_svc"]

# The fake OpenAI-compatible provider, for demos without a real provider (dev only: its own
# image, built on the runtime base plus devtools/).
FROM base AS fake_provider
COPY --chown=gateway devtools/ devtools/
EXPOSE 18080
CMD ["python", "-m", "devtools.fake_provider", "--host", "0.0.0.0", "--port", "18080"]
