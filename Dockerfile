# syntax=docker/dockerfile:1
# Multi-stage: build with the Rust toolchain, ship only the binary on Debian slim, as a user
# without privileges.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY data data
COPY benches benches
RUN cargo build --release --locked --bin tally && strip target/release/tally

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/tally --create-home tally
COPY --from=build /src/target/release/tally /usr/local/bin/tally
USER tally
WORKDIR /var/lib/tally
ENV TALLY_LISTEN=0.0.0.0:8080 \
    TALLY_DATA_DIR=/var/lib/tally
EXPOSE 8080
ENTRYPOINT ["tally"]
CMD ["serve"]
