# articlebot: build with cargo (locked), run as a non-root user on a slim image. Two images:
#   docker build -t articlebot .                                  lexical matching (the default, ~90 MB)
#   docker build --target semantic -t articlebot:semantic .       with a sentence model baked in (+90 MB)
#     --build-arg MODEL=sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2 picks another one;
#     the build fetches it from the Hugging Face hub (HF_ENDPOINT / HF_TOKEN build args for a mirror).
# docker run -e TELOXIDE_TOKEN=... -v articlebot-data:/data articlebot
# Override the baked-in knowledge with -v /path/to/knowledge:/app/knowledge:ro

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that editing the bot's code does not rebuild them: the workspace's
# manifests with empty sources.
COPY Cargo.toml Cargo.lock ./
COPY crates/knowledge/Cargo.toml crates/knowledge/
COPY crates/matching/Cargo.toml crates/matching/
COPY crates/embed/Cargo.toml crates/embed/
COPY crates/engine/Cargo.toml crates/engine/
COPY crates/postgres/Cargo.toml crates/postgres/
COPY crates/testkit/Cargo.toml crates/testkit/
COPY crates/bench/Cargo.toml crates/bench/
RUN for c in knowledge embed matching engine postgres testkit bench; do mkdir -p crates/$c/src && touch crates/$c/src/lib.rs; done \
    && mkdir -p crates/bench/benches src tests \
    && for b in engine load state_growth import_site learning_replay semantic_scan; do echo 'fn main() {}' > crates/bench/benches/$b.rs; done \
    && echo 'fn main() {}' > src/main.rs && touch tests/tests.rs \
    && cargo build --release --locked -p articlebot \
    && rm -rf src crates/*/src
COPY crates ./crates
COPY src ./src
# Newer than the empty sources built above, whatever times the build context carries.
RUN find src crates -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p articlebot \
    && strip target/release/articlebot

# The sentence model, fetched and checked (sizes, SHA-256) by the bot's own `model pull`. Built only
# for the semantic image.
FROM build AS model
ARG MODEL=sentence-transformers/all-MiniLM-L6-v2
ARG HF_ENDPOINT=https://huggingface.co
ARG HF_TOKEN=
RUN HF_ENDPOINT="$HF_ENDPOINT" HF_TOKEN="$HF_TOKEN" target/release/articlebot model pull "$MODEL" --out /model

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin articlebot \
    && mkdir -p /data /app \
    && chown articlebot:articlebot /data
COPY --from=build /src/target/release/articlebot /usr/local/bin/articlebot
COPY knowledge /app/knowledge
# Embedded texts are cached in the data volume, so a restart embeds only what changed.
ENV ARTICLEBOT_KNOWLEDGE=/app/knowledge \
    ARTICLEBOT_DATA=/data \
    ARTICLEBOT_CACHE=/data/vectors \
    ARTICLEBOT_METRICS=0.0.0.0:9100 \
    RUST_LOG=info
# 8443: the webhook server, when --webhook-url and --listen 0.0.0.0:8443 are given; 9100: metrics
# and /healthz.
EXPOSE 8443 9100
# Healthy once connected to the Bot API and taking updates (bash's /dev/tcp: no curl in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9100 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# The token comes only from the environment at run time: TELOXIDE_TOKEN.
USER articlebot
WORKDIR /app
VOLUME ["/data"]
ENTRYPOINT ["articlebot"]
CMD ["serve"]

FROM runtime AS semantic
COPY --from=model /model /app/model
ENV ARTICLEBOT_MODEL=/app/model

# Last, so that a plain `docker build` makes the lexical image.
FROM runtime AS lexical
