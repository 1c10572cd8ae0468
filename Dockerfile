# One image for every process of the county supply system (县域疫情保供物资发放系统):
#   docker run IMAGE services.intake api          gRPC API      (also: worker | relay)
#   docker run IMAGE services.monitoring ingest   MQTT → InfluxDB
#   docker run IMAGE services.cli migrate intake  schema upgrade (supplyctl)
#   docker run IMAGE simulators.gateway --scenario simulators/scenarios/sensors_county.yaml
# ENTRYPOINT is `python -m`, so the command is a module and its arguments.
# Dependencies come from requirements.lock, the same pinned file that `make setup` installs.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: virtualenv from the lock file, gRPC code from proto/ -------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /build
# the uv version the Makefile uses
RUN python -m pip install uv==0.13.9 \
 && python -m venv /opt/venv
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip sync --python /opt/venv/bin/python requirements.lock
COPY proto/ proto/
RUN mkdir -p gen \
 && /opt/venv/bin/python -m grpc_tools.protoc -I proto \
        --python_out=gen --pyi_out=gen --grpc_python_out=gen proto/supply/v1/*.proto \
 && touch gen/supply/__init__.py gen/supply/v1/__init__.py

# --- runtime ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="county-supply" \
      org.opencontainers.image.description="County epidemic supply system: intake, allocation, logistics, monitoring"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/gen \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SUPPLY_VAR_DIR=/var/lib/supply \
    SUPPLY_GRPC_HOST=0.0.0.0
RUN groupadd --system --gid 10001 supply \
 && useradd --system --uid 10001 --gid supply --no-create-home --home-dir /var/lib/supply \
        --shell /usr/sbin/nologin supply \
 && mkdir -p /var/lib/supply \
 && chown supply:supply /var/lib/supply
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /build/gen ./gen
COPY proto/ ./proto/
COPY services/ ./services/
COPY simulators/ ./simulators/
# byte-compile our code (the root file system is read-only in production), and `supplyctl`
# for `docker exec … supplyctl dead-letters intake`
RUN python -m compileall -q services simulators gen \
 && printf '#!/bin/sh\nexec python -m services.cli "$@"\n' > /opt/venv/bin/supplyctl \
 && chmod 0755 /opt/venv/bin/supplyctl
# numeric, so that Kubernetes' runAsNonRoot can verify it
USER 10001:10001
EXPOSE 50051 50052 50053 50054 8080
ENTRYPOINT ["python", "-m"]
CMD ["services.cli", "--help"]
