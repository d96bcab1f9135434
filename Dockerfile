# articlebot: build with cargo (locked), run as a non-root user on a slim image.
# docker build -t articlebot .
# docker run -e TELOXIDE_TOKEN=... -v articlebot-data:/data articlebot
# Override the baked-in knowledge with -v /path/to/knowledge:/app/knowledge:ro

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that editing the bot's code does not rebuild them: the workspace's
# manifests with empty sources.
COPY Cargo.toml Cargo.lock ./
COPY crates/knowledge/Cargo.toml crates/knowledge/
COPY crates/matching/Cargo.toml crates/matching/
COPY crates/engine/Cargo.toml crates/engine/
COPY crates/testkit/Cargo.toml crates/testkit/
COPY crates/bench/Cargo.toml crates/bench/
RUN for c in knowledge matching engine testkit bench; do mkdir -p crates/$c/src && touch crates/$c/src/lib.rs; done \
    && mkdir -p crates/bench/benches src tests \
    && for b in engine load state_growth; do echo 'fn main() {}' > crates/bench/benches/$b.rs; done \
    && echo 'fn main() {}' > src/main.rs && touch tests/tests.rs \
    && cargo build --release --locked -p articlebot \
    && rm -rf src crates/*/src
COPY crates ./crates
COPY src ./src
# Newer than the empty sources built above, whatever times the build context carries.
RUN find src crates -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p articlebot \
    && strip target/release/articlebot

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin articlebot \
    && mkdir -p /data /app \
    && chown articlebot:articlebot /data
COPY --from=build /src/target/release/articlebot /usr/local/bin/articlebot
COPY knowledge /app/knowledge
ENV ARTICLEBOT_KNOWLEDGE=/app/knowledge \
    ARTICLEBOT_DATA=/data \
    RUST_LOG=info
# The token comes only from the environment at run time: TELOXIDE_TOKEN.
USER articlebot
WORKDIR /app
VOLUME ["/data"]
ENTRYPOINT ["articlebot"]
CMD ["serve"]
