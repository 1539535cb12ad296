# satgw gateway image: `docker build -t satgw .` from the repository root; see deploy/README.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 satgw \
    && useradd --system --uid 10001 --gid satgw --home-dir /home/satgw --create-home --shell /usr/sbin/nologin satgw

WORKDIR /src
# The wheels of all dependencies are manylinux builds: no compiler is needed.
COPY pyproject.toml README.md ./
COPY protocols/ protocols/
COPY gateway/ gateway/
COPY bench/ bench/
RUN pip install --no-compile . && rm -rf /src

WORKDIR /home/satgw
USER 10001:10001

# In a container the HTTP endpoints (/healthz, /readyz, /metrics, /api/v1) must listen beyond loopback.
ENV SATGW_HTTP=0.0.0.0:8080
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# satgw drains on SIGTERM (the default stop signal) and exits 0.
ENTRYPOINT ["satgw"]
CMD ["run"]
