# nginx + ngx_http_docker_stream_module as a Docker API proxy with an allow-list
# (a drop-in for tecnativa/docker-socket-proxy; see image/README.md).
#
#   scripts/make-base-image        # only where debian:trixie-slim cannot be pulled
#   docker build --network host -t nds-proxy .
#
# Build stage: Debian's Rust (1.85) builds the module against Debian's own nginx
# (nginx-dev's configured skeleton), so it loads into the nginx package of the runtime
# stage. The Cargo.lock is used as is (--locked).
ARG BASE_IMAGE=debian:trixie-slim

FROM ${BASE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        rustc cargo nginx-dev libclang-dev clang libpcre2-dev libssl-dev zlib1g-dev \
        make gcc libc6-dev binutils pkg-config ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Optional CA certificates for a TLS-intercepting proxy (image/build-ca/README.md).
COPY image/build-ca/ /usr/local/share/ca-certificates/build-ca/
RUN update-ca-certificates
COPY image/build-module.sh /build/build-module.sh
RUN /build/build-module.sh configure
WORKDIR /build/module
# Dependencies first, in a layer of their own (stub sources only to satisfy cargo).
COPY Cargo.toml Cargo.lock build.rs ./
COPY logic/Cargo.toml logic/Cargo.toml
RUN mkdir -p src logic/src && touch src/lib.rs logic/src/lib.rs \
 && cargo fetch --locked \
 && rm -rf src logic/src
COPY logic logic
COPY src src
RUN /build/build-module.sh build

# Runtime stage: Debian's nginx (the exact version built against), envsubst, the module,
# the entrypoint that renders the configuration from the environment.
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/nginx-version /usr/local/share/nds/nginx-version
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        "nginx=$(cat /usr/local/share/nds/nginx-version)" gettext-base \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled /etc/nginx/conf.d \
           /etc/nginx/modules-enabled /var/www/html \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
COPY --from=build /out/ngx_http_docker_stream_module.so /usr/lib/nginx/modules/
COPY nginx-config/docker-api.conf /etc/nginx/docker-api.conf
COPY image/error-pages.conf /etc/nginx/nds-error-pages.conf
COPY image/error-locations.conf /etc/nginx/nds-error-locations.conf
COPY image/nginx.conf.template image/upstream-tls.conf.template image/allowlist /usr/local/share/nds/
COPY image/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# The module loads into this nginx and the default settings render a valid configuration.
RUN UPSTREAM=tcp://127.0.0.1:2375 docker-entrypoint.sh nginx -t

# 2375: plain HTTP; 2376: TLS, when a server certificate is mounted (image/README.md).
EXPOSE 2375 2376
# SIGTERM (docker stop): nginx's fast shutdown, open streams are closed at once.
# SIGQUIT: graceful shutdown, bounded by SHUTDOWN_TIMEOUT.
STOPSIGNAL SIGTERM
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["nginx", "-e", "stderr", "-g", "daemon off;"]
