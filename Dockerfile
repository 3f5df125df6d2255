# baton's production image: the broker's binary alone, stripped, on distroless/cc (glibc and
# libgcc, no shell, no package manager), running as a non-root user.
#
#   docker build -t baton:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" --build-arg SOURCE=<repository URL> .
#   docker run --read-only -p 8080:8080 -v baton-data:/data \
#     -v "$PWD/baton.toml:/etc/baton/baton.toml:ro" baton:0.1.0
#
# No configuration is baked in. The broker reads the file BATON_CONFIG names
# (/etc/baton/baton.toml): mount yours there. Start from the template the image carries at
# /usr/share/doc/baton/production.toml (config/production.toml in the repository), which refuses
# to start until it is filled in. docs/operations.md covers the rest: health checks, metrics on
# the admin listener (9090), logs, TLS in front, rolling restarts, backups.
#
# Base images are pinned by version and by the digest of their multi-platform index. To move
# to newer ones, read the new digests and replace tag and digest together:
#   docker buildx imagetools inspect rust:1.95.0-slim-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot
# Both are Debian 12 (bookworm), so the binary links against the glibc it runs on.

# The runtime base is a build argument, and the build stage is named "build", so that
# scripts/image.sh can build this very file where no registry is reachable (CI): it hands in a base
# made from Debian's packages (--build-arg RUNTIME_BASE=...) and, in place of this stage, the
# binary built by the same steps outside a container (--build-context build=DIR holding out/).
# Users build it with neither.
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f

FROM rust:1.95.0-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS build
WORKDIR /src
# The build steps live in one script, run here and by scripts/image.sh on the host, so that what
# CI checks is this stage's dependency-cache trick itself (scripts/build-stage.sh says how it works).
COPY scripts/build-stage.sh /usr/local/bin/build-stage

# 1. The dependencies, in a layer of their own: manifests and lock file with stub sources, so a
#    change to baton's own sources does not rebuild the ~240 crates it depends on. This layer is
#    rebuilt only when Cargo.toml, demo/Cargo.toml, Cargo.lock or the script change.
COPY Cargo.toml Cargo.lock ./
COPY demo/Cargo.toml demo/Cargo.toml
RUN build-stage deps

# 2. baton itself: what the binary is compiled from (the iframe page's template and the browser
#    scripts in static/ are embedded at compile time). Installed as /out/baton, with /out/data.
COPY src src
COPY templates templates
COPY static static
RUN build-stage app

FROM ${RUNTIME_BASE}

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
# The repository's URL, given at build time (--build-arg SOURCE=...).
ARG SOURCE=""
ARG RUNTIME_BASE
LABEL org.opencontainers.image.title="baton" \
      org.opencontainers.image.description="Self-hosted broker that carries a web session (a chat, a cart, any widget state) across the sites a company owns" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${RUNTIME_BASE}"

COPY --from=build /out/baton /usr/local/bin/baton
# An example to copy and fill in, never read by the broker from here.
COPY config/production.toml LICENSE /usr/share/doc/baton/
# The SQLite store's directory (backend = "sqlite"), owned by the runtime user. Unused with Redis.
COPY --from=build --chown=65532:65532 /out/data /data

# distroless's "nonroot" user, by number so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
WORKDIR /data
ENV BATON_CONFIG=/etc/baton/baton.toml
# 8080: the public listener (server.listen); 9090: the admin listener with /metrics
# (server.admin_listen), for the private network only.
EXPOSE 8080 9090
VOLUME ["/data"]
# GET http://127.0.0.1:8080/readyz answered 200 within 2 s (the image has no curl). It expects
# server.listen on port 8080; otherwise override it with `baton healthcheck --url ...`.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/baton", "healthcheck"]
# SIGTERM (docker stop, Kubernetes) drains: no new connections, in-flight requests finish.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/baton"]
CMD ["serve"]
