"""Device check: the serving engine on a GPU against one batched ``generate``.

The CPU benchmark (bench/serving.py) is the reference for the targets; this script is for
a machine with CUDA, where only torch and transformers are assumed. It builds a randomly
initialised Llama with SmolLM2-135M's shape (30 layers, 576 wide, 9 heads / 3 KV heads,
49,152-token vocabulary), so no weights are needed, then measures 32 requests x 64 new
tokens (EOS disabled, so every system generates exactly the same number of tokens):

  offline   one left-padded batched ``generate`` over all prompts
  engine    the kubellm engine, all 32 submitted at once, in-process (no HTTP)

and, with ``--check N`` (default 8), that the engine's greedy output on the device equals
``generate`` for N prompts alone, in float32 (weights drawn with a wide initialisation so
that greedy choices are not near-ties). Under a minute on one GPU, about 2 minutes on CPU:

    python3 bench/serving_engine_gpu.py [--device cuda] [--dtype bfloat16] [--check 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The repository's packages, installed or not; this folder leaves the path, since its
# localkube.py (a benchmark) would shadow the localkube package.
sys.path[:] = [str(REPO), str(REPO / "localkube" / "src")] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]


class ModuloTokenizer:
    """The tiny BPE tokenizer, made to decode a larger vocabulary (ids modulo its size)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.size = len(inner)

    def decode(self, ids: Any, **kw: Any) -> str:
        return str(self.inner.decode([int(i) % self.size for i in ids], **kw))


def main() -> int:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from kubellm.serving.engine import Engine, EngineConfig
    from kubellm.serving.streams import SamplingParams
    from localkube.testing.tiny_model import build_tiny_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--check", type=int, default=8, help="prompts checked in float32")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)

    tok_dir = build_tiny_model(Path("/tmp/kubellm-gpu-check/tiny"), train_steps=0)
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=None,
        initializer_range=0.2,
    )
    model = LlamaForCausalLM(config).to(device=args.device, dtype=dtype).eval()  # type: ignore[call-arg]
    lines = (REPO / "examples/data/prompts.txt").read_text().splitlines()
    prompts = [lines[i % len(lines)] for i in range(args.requests)]
    encoded = [list(tokenizer(p)["input_ids"]) for p in prompts]
    n_tokens = args.requests * args.max_tokens
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    # offline ceiling: one left-padded batched generate
    width = max(len(e) for e in encoded)
    ids = torch.tensor([[0] * (width - len(e)) + e for e in encoded], device=args.device)
    mask = torch.tensor(
        [[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=args.device
    )
    with torch.inference_mode():
        kw = dict(do_sample=False, pad_token_id=0, eos_token_id=None)
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, **kw)
        sync()
        start = time.perf_counter()
        out = model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=args.max_tokens, **kw
        )
        sync()
        offline_wall = time.perf_counter() - start
    assert out.shape[1] - width == args.max_tokens

    decoder = ModuloTokenizer(tokenizer)
    engine = Engine(
        model,
        decoder,
        EngineConfig(max_batch_size=args.requests),
        context_len=8192,
        eos_ids=set(),
        pad_id=0,
    )
    engine.start()
    greedy = SamplingParams(temperature=0.0)
    engine.generate(encoded[0], 4, timeout=120)  # warm-up
    start = time.perf_counter()
    streams = [engine.submit(e, greedy, args.max_tokens) for e in encoded]
    finishes = [s.wait(300)[1] for s in streams]
    engine_wall = time.perf_counter() - start
    assert all(f.completion_tokens == args.max_tokens for f in finishes)

    engine.stop()

    identical = 0
    if args.check:  # float32, the prompts together (chunked prefill, joins, leaves)
        model.float()
        check = Engine(
            model,
            decoder,
            EngineConfig(max_batch_size=args.check, max_step_tokens=64),
            context_len=8192,
            eos_ids=set(),
            pad_id=0,
        )
        check.start()
        streams = [check.submit(e, greedy, 32) for e in encoded[: args.check]]
        texts = [s.wait(300)[0] for s in streams]
        check.stop()
        with torch.inference_mode():
            for prompt, text in zip(encoded[: args.check], texts, strict=True):
                ref = model.generate(
                    torch.tensor([prompt], device=args.device),
                    max_new_tokens=32,
                    do_sample=False,
                    pad_token_id=0,
                    eos_token_id=None,
                )[0, len(prompt) :]
                identical += decoder.decode(ref.tolist(), skip_special_tokens=True) == text
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"device {args.device} ({name}), dtype {args.dtype}, torch {torch.__version__}")
    print(f"{args.requests} requests x {args.max_tokens} new tokens, SmolLM2-135M shape")
    print("| system | wall s | tokens/s |\n|---|---|---|")
    print(f"| offline generate | {offline_wall:.2f} | {n_tokens / offline_wall:.0f} |")
    print(f"| kubellm engine | {engine_wall:.2f} | {n_tokens / engine_wall:.0f} |")
    print(f"engine / offline: {offline_wall / engine_wall:.2f}x")
    if args.check:
        print(f"float32 greedy, engine vs generate alone: {identical}/{args.check} identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
