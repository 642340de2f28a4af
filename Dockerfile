# Build: one release binary with the migrations, templates and static files compiled in.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
# The benchmark harness is a workspace member: cargo reads its manifest, never builds it here.
COPY bench ./bench
RUN cargo build --release --locked && strip target/release/ollama-gate

# Run: a small image with the binary, CA certificates (for https upstreams) and nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app --uid 10001 gate
WORKDIR /app
COPY --from=build /src/target/release/ollama-gate /usr/local/bin/ollama-gate
RUN mkdir -p /app/data /app/logs && chown -R gate /app
USER gate
# Inside a container the admin listener must bind every interface to be
# published at all; publish it on the host's loopback only (see docker-compose.yml).
ENV ADMIN_HOST=0.0.0.0
VOLUME ["/app/data", "/app/logs"]
EXPOSE 8000 8001
ENTRYPOINT ["ollama-gate"]
CMD ["serve"]
