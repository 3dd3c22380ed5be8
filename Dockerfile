# Databunker's container image: `podman build -t databunker .` (or docker build).
#   podman run --rm -p 3000:3000 databunker                      the demo (root token DEMO)
#   podman run --read-only --tmpfs /tmp -v vault:/var/lib/databunker \
#     -e DATABUNKER_MASTERKEY -e DATABUNKER_DB=postgresql://... databunker databunker serve
# BASE is any Debian-based image with Python 3.11 (the official python:3.11-slim by default).
ARG BASE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE} AS build
RUN python3 -m venv /opt/databunker
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/databunker/bin/pip install --no-cache-dir --disable-pip-version-check /src \
    && find /opt/databunker -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE}
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/databunker \
        --create-home --shell /usr/sbin/nologin databunker
COPY --from=build /opt/databunker /opt/databunker
ENV PATH=/opt/databunker/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BUNKER_HOST=0.0.0.0
# Nothing is written outside the data volume and /tmp: the root file system may be read-only.
USER 10001:10001
WORKDIR /var/lib/databunker
VOLUME ["/var/lib/databunker"]
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/v1/status', timeout=2).status != 200)"]
CMD ["databunker", "demo", "--host", "0.0.0.0", "--port", "3000"]
