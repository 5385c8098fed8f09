# workflow: the server, the runners and the web UI in one image; the command picks the
# role (workflow serve, workflow run PIPELINE, ...). See docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    XDG_DATA_HOME=/var/lib/workflow

WORKDIR /src
COPY pyproject.toml README.md ./
COPY workflow ./workflow
COPY webui ./webui
RUN pip install --disable-pip-version-check '.[server,mongo,dask]' \
    && useradd --create-home --uid 1000 workflow \
    && mkdir -p /var/lib/workflow /archive \
    && chown workflow /var/lib/workflow /archive

USER workflow
WORKDIR /home/workflow
EXPOSE 8004
ENTRYPOINT ["workflow"]
CMD ["serve", "--host", "0.0.0.0"]
