# syntax=docker/dockerfile:1
#
# idgate container image: docker build -t idgate .
# Runs `idgate serve` as an unprivileged user with the config at $IDGATE_CONFIG; mount it there.
#
# The base image is pinned by its exact version tag. Pin its digest as well where you build
# (python:3.11.13-slim-bookworm@sha256:...; `docker buildx imagetools inspect` prints it): it
# could not be looked up where this file was written, and a tag can be pushed again.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# Builder: install idgate and its dependencies into a virtualenv. Every dependency ships
# manylinux wheels, so no compiler is needed here either; nothing of this stage but the
# virtualenv reaches the final image.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/idgate
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
# pip compiles the bytecode here, because the final image runs on a read-only root filesystem.
# With the tracing extra, so a `tracing` section works without another image.
RUN /opt/idgate/bin/pip install --no-cache-dir '.[tracing]' \
    && /opt/idgate/bin/idgate --version

FROM ${PYTHON_IMAGE}
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it and volumes can be
# granted to it; no home directory and no login shell.
RUN groupadd --system --gid 10001 idgate \
    && useradd --system --uid 10001 --gid idgate --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin idgate
COPY --from=builder /opt/idgate /opt/idgate
ENV PATH=/opt/idgate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IDGATE_CONFIG=/etc/idgate/idgate.yaml \
    IDGATE_HEALTHCHECK_URL=http://127.0.0.1:4180/healthz
USER 10001:10001
# 4180: the proxy (`listen`, which must be 0.0.0.0:4180 in a container); 9180: `metrics.listen`.
EXPOSE 4180 9180
# Liveness only (/healthz): /readyz also depends on the provider, and an unhealthy container may
# be restarted. Python's urllib, because the slim image has no curl; set IDGATE_HEALTHCHECK_URL
# when `listen` uses another port.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['IDGATE_HEALTHCHECK_URL'], timeout=2)"]
# Exec form: idgate is PID 1 and gets `docker stop`'s SIGTERM itself, which starts its drain
# (README: Stopping). Docker kills it 10s later unless told otherwise: `docker stop -t 45`,
# compose's `stop_grace_period`, Kubernetes' `terminationGracePeriodSeconds`.
ENTRYPOINT ["idgate"]
CMD ["serve"]
