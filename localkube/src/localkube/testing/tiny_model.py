"""Build a tiny GPT-2-style causal LM and a byte-level BPE tokenizer, offline, in seconds.

Tests never download a model: this trains a tokenizer on a text corpus with `tokenizers`
and builds a randomly initialised 2-layer GPT-2 from a config. Optionally it trains a few
steps so that greedy outputs are not pure noise.
"""

from __future__ import annotations

from pathlib import Path

from kubellm.training.tokenizer import DEFAULT_CHAT_TEMPLATE

__all__ = ["DEFAULT_CHAT_TEMPLATE", "build_tiny_model", "example_corpus_path"]


def example_corpus_path() -> Path:
    """The example corpus in the repository's examples/data (source checkouts)."""
    return Path(__file__).resolve().parents[4] / "examples" / "data" / "support-corpus.txt"


def build_tiny_model(
    out_dir: Path,
    corpus: Path | None = None,
    *,
    vocab_size: int = 512,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 2,
    n_positions: int = 256,
    train_steps: int = 0,
    seed: int = 0,
    chat_template: str | None = DEFAULT_CHAT_TEMPLATE,
) -> Path:
    """Write a loadable `transformers` model + tokenizer directory to ``out_dir``."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    corpus = corpus or example_corpus_path()
    out_dir.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train(
        [str(corpus)],
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    if chat_template:
        tokenizer.chat_template = chat_template
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    if train_steps > 0:
        text = corpus.read_text()
        ids = torch.tensor(tokenizer(text)["input_ids"])
        block = min(64, n_positions)
        usable = (len(ids) // block) * block
        blocks = ids[:usable].view(-1, block)
        optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        gen = torch.Generator().manual_seed(seed)
        for _ in range(train_steps):
            idx = torch.randint(0, blocks.shape[0], (16,), generator=gen)
            batch = blocks[idx]
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            optim.step()
            optim.zero_grad()
        model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
