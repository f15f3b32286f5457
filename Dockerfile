# bitbucket-auditor as a slim, non-root container image.
#
#   docker build -t bitbucket-auditor .
#   docker run --rm bitbucket-auditor run --demo -q
#   docker run --rm -v "$PWD/reports:/data/reports" \
#       -e BITBUCKET_EMAIL=audit-bot@example.com \
#       -e BITBUCKET_API_TOKEN_FILE=/run/secrets/bitbucket-api-token \
#       -v /path/to/secret:/run/secrets/bitbucket-api-token:ro \
#       bitbucket-auditor run -w acme --log-format json
#
# Credentials come only from the environment or secret files (never arguments); run folders are
# written to /data/reports (mount a volume there).

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY setup.cfg pyproject.toml README.md controls.yaml constraints.txt ./
COPY auditor ./auditor
COPY templates ./templates
# Every dependency at the version constraints.txt pins (`make constraints` renews it).
RUN python -m venv /opt/auditor \
    && /opt/auditor/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/auditor/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim-bookworm
# The libraries WeasyPrint renders PDFs with, and a font (auditor/sysdeps.py lists them).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/auditor /opt/auditor
RUN useradd --uid 10001 --create-home --home-dir /home/auditor auditor \
    && mkdir -p /data/reports && chown -R auditor /data
ENV PATH=/opt/auditor/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001
WORKDIR /data
# Files it writes (stores, journals, run folders) are private to the user (the CLI adds umask
# 077 too); caches go to /tmp, the one writable place under readOnlyRootFilesystem.
ENV XDG_CACHE_HOME=/tmp/cache
# Fails the build when a system library is missing, instead of the first PDF.
RUN auditor doctor
ENTRYPOINT ["auditor"]
CMD ["--help"]
