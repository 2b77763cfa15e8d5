"""The tokenizer of a pre-trained-from-scratch model: byte-level BPE trained on its data.

Pre-training has no tokenizer to inherit, so one is trained on the training documents with
the ``tokenizers`` library (milliseconds for a few MB). Byte-level BPE never meets an
unknown character, which matters for support tickets full of names and error codes. The
tokenizer is saved in the output directory before training starts: a resumed run reuses it
instead of retraining, so checkpoints and token ids always agree.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_CHAT_TEMPLATE", "EOS_TOKEN", "load_or_train_tokenizer", "train_tokenizer"]

EOS_TOKEN = "<|endoftext|>"

#: The chat template a tokenizer trained from scratch gets: "Role: content" lines, then
#: "Assistant:" when a generation prompt is asked for.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}: "
    "{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _batches(documents: Sequence[str], size: int = 1000) -> Iterator[Sequence[str]]:
    for i in range(0, len(documents), size):
        yield documents[i : i + size]


def train_tokenizer(documents: Sequence[str], vocab_size: int) -> Any:
    """A ``PreTrainedTokenizerFast`` (byte-level BPE, EOS = BOS = PAD = ``<|endoftext|>``)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _batches(documents),
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS_TOKEN],
        show_progress=False,
        length=len(documents),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
    )
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return tokenizer


def load_or_train_tokenizer(folder: Path, documents: Sequence[str], vocab_size: int) -> Any:
    """Reuse the tokenizer saved in ``folder`` (a resumed run) or train and save one."""
    from transformers import AutoTokenizer

    if (folder / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(folder)
    tokenizer = train_tokenizer(documents, vocab_size)
    # Write beside, then rename: a pod killed mid-save never leaves half a tokenizer behind.
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return tokenizer
