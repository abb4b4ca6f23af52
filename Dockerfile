# Lifecycle connector: a scheduled sync worker.
#   docker build -t lifecycle-connector .
#   docker run --rm --env-file connector.env \
#     -v "$PWD/mappings:/mappings:ro" -v connector-state:/data lifecycle-connector sync

# ---- build: the same wheel `pip wheel --no-deps .` builds anywhere, plus its dependencies
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY connector/ connector/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
 && pip wheel --no-cache-dir --wheel-dir /wheels /dist/*.whl

# ---- runtime: no compilers, no build tools, not root
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONNECTOR_MAPPINGS_DIR=/mappings \
    CONNECTOR_STATE_URL=sqlite:////data/connector-state.db
RUN useradd --create-home --uid 10001 --user-group connector \
 && mkdir -p /data /mappings \
 && chown connector:connector /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/lifecycle_connector-*.whl \
 && rm -rf /wheels
USER 10001:10001
WORKDIR /home/connector
# State (SQLite) lives on a volume; mappings are mounted read-only at /mappings.
VOLUME ["/data"]
ENTRYPOINT ["connector"]
CMD ["sync"]
