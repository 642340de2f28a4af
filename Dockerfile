# Build: one release binary with the migrations, templates and static files compiled in.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
# The benchmark harness and the test kit are workspace members: cargo reads their
# manifests to resolve the workspace, and builds neither here.
COPY bench ./bench
COPY testkit ./testkit
RUN cargo build --release --locked --bin ollama-gate && strip target/release/ollama-gate

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
# The admin listener keeps its default, the container's loopback: reachable from inside only,
# so publishing ports cannot expose it by accident. To publish it, opt in with
# ADMIN_HOST=0.0.0.0 and publish it on the host's loopback, as docker-compose.yml does:
#   docker run -e ADMIN_HOST=0.0.0.0 -p 8000:8000 -p 127.0.0.1:8001:8001 ...
VOLUME ["/app/data", "/app/logs"]
EXPOSE 8000 8001
# The proxy's /health: 200 while the database answers (upstream health is in its body).
HEALTHCHECK --interval=15s --timeout=6s --start-period=10s --retries=3 CMD ["ollama-gate", "health"]
ENTRYPOINT ["ollama-gate"]
CMD ["serve"]
