# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Test and bench targets are declared in Cargo.toml; cargo refuses the manifest unless their
# files exist (scripts/docker-build-check, run by scripts/test, checks these COPY lines).
COPY compat-tests ./compat-tests
COPY benches ./benches
RUN cargo build --release --locked --bin sluice

# Runtime stage: just the binary on a slim Debian.
FROM debian:bookworm-slim
# curl for the health check.
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/sluice sluice \
    && mkdir -p /var/lib/sluice && chown sluice /var/lib/sluice
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
USER sluice
VOLUME /var/lib/sluice
# Kafka clients; the admin listener (/metrics, /v1/health, /v1/ready, the web console).
EXPOSE 9092 9644
# Clients outside the container reach it through the published port on localhost by default;
# override SLUICE_ADVERTISED_LISTENER with the address your clients use.
ENV SLUICE_LISTEN=0.0.0.0:9092 \
    SLUICE_ADVERTISED_LISTENER=localhost:9092 \
    SLUICE_DATA_DIR=/var/lib/sluice \
    SLUICE_ADMIN_LISTEN=0.0.0.0:9644
# Ready once recovery is done and the listeners are up.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9644/v1/ready || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["serve"]
