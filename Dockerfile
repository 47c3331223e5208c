# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Integration-test targets are declared in Cargo.toml; cargo only needs their paths to exist.
COPY compat-tests ./compat-tests
RUN cargo build --release --locked --bin sluice

# Runtime stage: just the binary on a slim Debian.
FROM debian:bookworm-slim
RUN useradd --system --home-dir /var/lib/sluice sluice \
    && mkdir -p /var/lib/sluice && chown sluice /var/lib/sluice
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
USER sluice
VOLUME /var/lib/sluice
EXPOSE 9092
# Clients outside the container reach it through the published port on localhost by default;
# override SLUICE_ADVERTISED_LISTENER with the address your clients use.
ENV SLUICE_LISTEN=0.0.0.0:9092 \
    SLUICE_ADVERTISED_LISTENER=localhost:9092 \
    SLUICE_DATA_DIR=/var/lib/sluice
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["serve"]
