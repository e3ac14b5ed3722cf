# nginx + ngx_http_docker_stream_module as a Docker API proxy with an allow-list
# (a drop-in for tecnativa/docker-socket-proxy; see image/README.md).
#
#   scripts/make-base-image        # only where debian:trixie-slim cannot be pulled
#   docker build --network host -t nds-proxy .
#
# Build stage: the Debian package libnginx-mod-http-docker-stream (debian/), built the
# Debian way against this release's own nginx (dh's nginx add-on from nginx-dev: nginx's
# build system, the load test, the nginx-abi dependency). Debian's Rust (trixie: 1.85;
# bookworm: rustc-web) builds it with the Cargo.lock as is (--locked). scripts/build-deb
# runs this stage alone for other releases (BASE_IMAGE=debian:bookworm-slim).
ARG BASE_IMAGE=debian:trixie-slim

FROM ${BASE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive CARGO_HOME=/usr/local/cargo
WORKDIR /build/module
COPY debian debian
RUN apt-get update \
 && apt-get build-dep -y --no-install-recommends . \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
# Optional CA certificates for a TLS-intercepting proxy (image/build-ca/README.md).
COPY image/build-ca/ /usr/local/share/ca-certificates/build-ca/
RUN update-ca-certificates
# Dependencies first, in a layer of their own (stub sources only to satisfy cargo).
COPY Cargo.toml Cargo.lock build.rs ./
COPY logic/Cargo.toml logic/Cargo.toml
RUN mkdir -p src logic/src && touch src/lib.rs logic/src/lib.rs \
 && cargo fetch --locked \
 && rm -rf src logic/src
COPY config config.make README.md ./
COPY nginx-config nginx-config
COPY logic logic
COPY src src
COPY image/build-module.sh /build/build-module.sh
RUN /build/build-module.sh

# Runtime stage: Debian's nginx (the exact version built against), envsubst, the module,
# the entrypoint that renders the configuration from the environment.
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/ /tmp/nds-debs/
# The package brings the nginx it was built against (its nginx-abi dependency).
# The entrypoint renders into /run/nds, so the root filesystem may be read-only; that
# includes the groups that give the workers the daemon sockets' gids: glibc reads
# /run/nds/group after /etc/group (libnss-extrausers, its file linked there; "merge" so
# that a user listed in /etc/group is still looked up in it).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        "nginx=$(cat /tmp/nds-debs/nginx-version)" gettext-base libnss-extrausers \
        /tmp/nds-debs/libnginx-mod-http-docker-stream_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/nds-debs /etc/nginx/sites-enabled /etc/nginx/conf.d \
           /etc/nginx/modules-enabled /var/www/html \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log \
 && sed -i 's/^group:.*/group:          files [SUCCESS=merge] extrausers/' /etc/nsswitch.conf \
 && grep -q '^group: .* extrausers$' /etc/nsswitch.conf \
 && mkdir -p /var/lib/extrausers && ln -s /run/nds/group /var/lib/extrausers/group
COPY image/nginx.conf /etc/nginx/nginx.conf
COPY nginx-config/docker-api.conf /etc/nginx/docker-api.conf
COPY image/error-pages.conf /etc/nginx/nds-error-pages.conf
COPY image/error-locations.conf /etc/nginx/nds-error-locations.conf
COPY image/nginx.conf.template image/upstream-tls.conf.template image/tls.conf.template \
     image/tls-client-certs.conf.template image/auth-location.conf image/auth-server.conf.template \
     image/allowlist /usr/local/share/nds/
COPY image/docker-entrypoint.sh image/nds-healthcheck /usr/local/bin/
# The module loads into this nginx and the default settings render a valid configuration.
# /run/nds: root's own when the entrypoint runs as root; writable for another user
# (docker run --user).
RUN UPSTREAM=tcp://127.0.0.1:2375 docker-entrypoint.sh nginx -t \
 && rm -rf /run/nds && install -d -m 1777 /run/nds

# Healthy while the daemon answers /_ping through nginx (image/nds-healthcheck).
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 CMD ["nds-healthcheck"]
# 2375: plain HTTP; 2376: TLS, when a server certificate is mounted (image/README.md).
EXPOSE 2375 2376
# SIGTERM (docker stop): nginx's fast shutdown, open streams are closed at once.
# SIGQUIT: graceful shutdown, bounded by SHUTDOWN_TIMEOUT.
STOPSIGNAL SIGTERM
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["nginx", "-e", "stderr", "-g", "daemon off;"]
