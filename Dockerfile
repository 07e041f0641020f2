# syntax=docker/dockerfile:1
# Portcullis in a container: one binary, data in a volume, a non-root user.
#
#   docker build -t portcullis .                 # scripts/docker-build.sh does this where docker runs
#   docker run -p 8700:8700 -v portcullis-data:/var/lib/portcullis portcullis
#
# The build stage needs only Rust (the plugins are built for wasm32-wasip2 by
# host/plugin/build.rs, which installs that target with rustup).

FROM rust:1-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-wasip2
COPY . .
RUN cargo build --release -p portcullis --locked \
 && install -m 0755 target/release/portcullis /usr/local/bin/portcullis

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/portcullis --shell /usr/sbin/nologin portcullis \
 && install -d -m 0700 -o portcullis -g portcullis /var/lib/portcullis
COPY --from=build /usr/local/bin/portcullis /usr/local/bin/portcullis
USER portcullis
VOLUME ["/var/lib/portcullis"]
ENV PORTCULLIS_DATA_DIR=/var/lib/portcullis \
    PORTCULLIS_LISTEN=0.0.0.0:8700 \
    PORTCULLIS_LOG_FORMAT=json
EXPOSE 8700
# Ready = the store answers and an authorizer is loaded. (With [tls], use https and -k.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8700/ready || exit 1
ENTRYPOINT ["/usr/local/bin/portcullis", "server"]
