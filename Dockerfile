# The greenfoundry image for docker-compose.yml: the package and its console script.
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY greenfoundry greenfoundry
COPY ingest ingest
COPY metrics metrics
COPY scoring scoring
COPY sim sim
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/greenfoundry greenfoundry \
    && mkdir -p /var/lib/greenfoundry && chown greenfoundry /var/lib/greenfoundry
USER greenfoundry
WORKDIR /var/lib/greenfoundry
ENTRYPOINT []
