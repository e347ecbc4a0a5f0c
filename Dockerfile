# The greenfoundry image for docker-compose.yml: the package and its console script.
# The whole tree is copied (less .dockerignore): setup.py finds the packages and their data, so
# there is no list of folders here to keep in step with the tree.
FROM python:3.11-slim
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/greenfoundry greenfoundry \
    && mkdir -p /var/lib/greenfoundry && chown greenfoundry /var/lib/greenfoundry
USER greenfoundry
WORKDIR /var/lib/greenfoundry
ENTRYPOINT []
