# mcp-webtools over Streamable HTTP. Mount your tool definitions at /config and pass their
# ${...} secrets as environment variables:
#   docker run -p 8000:8000 -v "$PWD/config:/config:ro" -e CRM_API_KEY -e MCP_WEBTOOLS_AUTH_TOKEN mcp-webtools
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY mcp_webtools ./mcp_webtools
# With the Redis client, for `--state redis://...` (several replicas sharing rate limits and task handles).
RUN pip install ".[redis]" && rm -rf /src

# The shipped examples, so the image starts as is; a mounted /config replaces them.
COPY config /config

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin webtools
USER 10001
WORKDIR /

ENV MCP_WEBTOOLS_CONFIG=/config
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

ENTRYPOINT ["mcp-webtools"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
