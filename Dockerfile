# articlebot: build with cargo (locked), run as a non-root user on a slim image.
# docker build -t articlebot .
# docker run -e TELOXIDE_TOKEN=... -v articlebot-data:/data articlebot
# Override the baked-in knowledge with -v /path/to/knowledge:/app/knowledge:ro

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that editing the bot's code does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
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
