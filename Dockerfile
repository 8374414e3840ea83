# syntax=docker/dockerfile:1
# The clippings services for CPU nodes: `clippings embedder`, `clippings linker`, the review
# page (`clippings review`, with the `review` extra), and every other subcommand. Build
# (docs/deploy.md, "Images"):
#   docker build -t clippings:0.1.0 .
# The shipped models (clippings/assets/models) are baked in through the package; another
# exported model folder can be mounted and named by CLIPPINGS_MODEL=/path/to/folder.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/clippings
ENV PATH=/opt/clippings/bin:$PATH
WORKDIR /src
# Dependencies first, in their own layer: a code change does not reinstall them. The base
# dependencies and the `review` extra (Flask, SQLAlchemy, Alembic, psycopg, waitress).
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\\n'.join(p['dependencies'] + p['optional-dependencies']['review']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt
# The package's folders (pyproject maps services/, models/, training/, export/ into clippings).
COPY clippings ./clippings
COPY services ./services
COPY models ./models
COPY training ./training
COPY export ./export
RUN pip install --no-cache-dir --no-deps . \
    && python -m compileall -q /opt/clippings/lib \
    && clippings --help > /dev/null \
    && python -c "import flask, flask_wtf, waitress, sqlalchemy, alembic, psycopg"

FROM ${PYTHON_IMAGE} AS runtime
# A fixed high UID/GID (the manifests run as 10001:10001, read-only root filesystem).
RUN groupadd --system --gid 10001 clippings \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin clippings
COPY --from=build /opt/clippings /opt/clippings
ENV PATH=/opt/clippings/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
# The services' metrics ports (embedder, linker): /metrics, /healthz, /readyz; the review page.
EXPOSE 9101 9102 8400
ENTRYPOINT ["clippings"]
CMD ["--help"]
