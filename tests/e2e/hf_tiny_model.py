"""A tiny text-classification model for the Hugging Face toolkit tests, built on the fly.

A one-layer BERT with a 32-wide hidden state, random weights from a fixed seed and a vocabulary of
a few dozen words: it loads in about a second and nothing is downloaded (``HF_HUB_OFFLINE=1``).
Run as a script to build one: ``python tests/e2e/hf_tiny_model.py DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path

WORDS = ("the a an is was good bad great terrible movie film plot actor i it this that love hate "
         "liked boring fun not very really and but").split()
LABELS = {0: "NEGATIVE", 1: "POSITIVE"}


def build(model_dir: Path) -> Path:
    """Write config, weights and tokenizer files for a ``text-classification`` pipeline."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    model_dir.mkdir(parents=True, exist_ok=True)
    vocab = model_dir / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(WORDS), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2, id2label=LABELS,
                        label2id={v: k for k, v in LABELS.items()}, architectures=["BertForSequenceClassification"])
    BertForSequenceClassification(config).save_pretrained(model_dir)
    BertTokenizer(str(vocab), do_lower_case=True, model_max_length=64).save_pretrained(model_dir)
    return model_dir


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
