# syntax=docker/dockerfile:1
# The live exchange (`aex serve`) as a container image: docs/operations.md, "Deploying".
#
#   docker build -t aex:0.1.0 .
#   docker run -p 8080:8080 -v aex-data:/var/lib/aex aex:0.1.0
#
# Two stages: `build` resolves the server's packages from uv.lock into /opt/aex; `runtime`
# copies that virtual environment onto a fresh slim base and runs it as an unprivileged user.
# The image holds the lock's core dependencies and the `server` extra: no dev group, no
# workbench (JupyterLab, polars, DuckDB, ...); tests/deploy/test_image_dependencies.py starts
# the server with everything else hidden.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never
RUN pip install "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
# Every pinned wheel with its hash, as the lock has it; then the project itself, without deps.
RUN uv export --frozen --no-dev --extra server --no-emit-project \
        --format requirements-txt --output-file /tmp/requirements.txt \
 && uv venv --python /usr/local/bin/python3 /opt/aex \
 && uv pip install --python /opt/aex/bin/python --no-deps --require-hashes \
        --requirement /tmp/requirements.txt
COPY aex ./aex
COPY serve ./serve
RUN uv pip install --python /opt/aex/bin/python --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="aex" \
      org.opencontainers.image.description="AEX, the Agent Exchange: the live exchange"
# One unprivileged user; the data directory (SQLite file, CA keys, generated secrets) is its own.
RUN groupadd --system --gid 10001 aex \
 && useradd --system --uid 10001 --gid aex --home-dir /var/lib/aex --no-create-home \
        --shell /usr/sbin/nologin aex \
 && install -d -o aex -g aex -m 0700 /var/lib/aex
COPY --from=build /opt/aex /opt/aex
ENV PATH=/opt/aex/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /var/lib/aex
VOLUME ["/var/lib/aex"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]
ENTRYPOINT ["aex", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8080", "--data-dir", "/var/lib/aex"]
