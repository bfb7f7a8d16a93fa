# Images for docker-compose.yml. Needs nothing but Docker: the wasm is built here with
# rustup's wasm32-wasip1 target.

# --- the filter module ---
FROM rust:1.95-bookworm AS wasm
RUN rustup target add wasm32-wasip1
WORKDIR /src
COPY . .
RUN cargo build --locked --release --lib --package hardening-filter --target wasm32-wasip1 \
    && mkdir -p /out/dist \
    && cp target/wasm32-wasip1/release/hardening.wasm /out/dist/hardening.wasm

# --- the sample backend ---
FROM rust:1.95-bookworm AS backend-build
WORKDIR /src
COPY . .
RUN cargo build --locked --release --package sample-backend

FROM debian:bookworm-slim AS backend
COPY --from=backend-build /src/target/release/sample-backend /usr/local/bin/sample-backend
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/sample-backend"]

# --- the rate limit service of the global limits (hardening-ratelimit) ---
FROM rust:1.95-bookworm AS ratelimit-build
WORKDIR /src
COPY . .
RUN cargo build --locked --release --package hardening-ratelimit

FROM debian:bookworm-slim AS ratelimit
COPY --from=ratelimit-build /src/target/release/hardening-ratelimit /usr/local/bin/hardening-ratelimit
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/hardening-ratelimit"]

# --- Envoy with the module; its config is mounted by docker-compose.yml ---
FROM envoyproxy/envoy:v1.40-latest AS envoy
WORKDIR /srv/hardening
COPY --from=wasm /out/dist/hardening.wasm /srv/hardening/dist/hardening.wasm
