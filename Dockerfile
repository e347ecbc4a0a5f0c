# The greenfoundry image for docker-compose.yml: the package and its console script, run as an
# unprivileged user. The whole tree is copied (less .dockerignore): setup.py finds the packages
# and their data, so there is no list of folders here to keep in step with the tree.
#
# The folders the compose volumes mount exist here, owned by the image's user and private
# (0700): Docker fills a new named volume from the image's folder, owner and mode included, so
# the user can write its spool, dead letters, state and reports there.
FROM python:3.11-slim
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir . \
    && useradd --system --home /var/lib/greenfoundry greenfoundry \
    && for d in ingest metrics alerts reports; do mkdir -p "/var/lib/greenfoundry/$d"; done \
    && chown -R greenfoundry /var/lib/greenfoundry \
    && chmod -R 0700 /var/lib/greenfoundry
USER greenfoundry
WORKDIR /var/lib/greenfoundry
ENTRYPOINT []
