# syntax=docker/dockerfile:1
# Slim multi-stage image: build a wheel with its dependencies, install it into a clean runtime stage,
# run as a non-root user. Configuration comes from the environment (OMATRUST_DATABASE_URL, OMATRUST_RPC_URL,
# OMATRUST_RELAYER_KEY, ... — see README "Configuration").

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY contracts_abi ./contracts_abi
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    OMATRUST_DATABASE_URL=sqlite:////data/omatrust.db
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels omatrust-x402 && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --create-home omatrust
USER omatrust
WORKDIR /data
EXPOSE 8402
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8402/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["omatrust"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8402"]
