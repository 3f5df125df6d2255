# baton: one static-ish binary on a slim Debian base.
#   docker build -t baton .
#   docker run -p 8080:8080 -v baton-data:/data -v $PWD/config/baton.toml:/etc/baton/baton.toml:ro baton
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY templates templates
COPY static static
COPY benches benches
# The demo is a workspace member: its manifest and sources let cargo read the workspace, but only
# the broker is built (-p baton), and only its binary goes into the image.
COPY demo demo
RUN cargo build --release --locked -p baton

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home /data baton && mkdir -p /data /etc/baton && chown baton /data
COPY --from=build /src/target/release/baton /usr/local/bin/baton
COPY config/baton.toml /etc/baton/baton.toml
USER baton
WORKDIR /data
ENV BATON_SERVER__LISTEN=0.0.0.0:8080 \
    BATON_STORE__SQLITE_PATH=/data/baton.db
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/baton"]
CMD ["serve", "--config", "/etc/baton/baton.toml"]
