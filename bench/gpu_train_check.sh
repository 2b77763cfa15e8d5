#!/usr/bin/env bash
# GPU check of `kubellm train`: bf16 training of a ~100M GPT-2 for 100 steps, printing
# tokens/s and model FLOPs utilisation (MFU = 6 * params * tokens/s / peak bf16 FLOP/s).
#
#   bash bench/gpu_train_check.sh              # on a machine with a GPU, from the repo root
#   PRESET=gpt2-tiny STEPS=10 SEQ=128 BATCH=4 PRECISION=fp32 bash bench/gpu_train_check.sh
#                                              # dry run of the script itself on a CPU
#
# No hub access is assumed: stage 1 pre-trains the `gpt2-small` preset (12 x 768) from
# scratch on the example corpus (repeated to a few MB) and registers it in a local sqlite
# MLflow; stage 2 fully fine-tunes that registered version (models:/gpu-check@candidate),
# which is the "bf16 fine-tune of a ~100M model". Stage 3 runs a plain transformers Trainer
# script on the same model and data for the wrapper-overhead ratio.
# Env: PYTHON, PRESET, STEPS, BATCH, BIG_BATCH (an extra fine-tune stage with this batch),
# SEQ, PRECISION, VOCAB, REPEAT (corpus copies),
# PEAK_TFLOPS (default from the GPU name).
set -uo pipefail

PY=${PYTHON:-python3}
PRESET=${PRESET:-gpt2-small}
STEPS=${STEPS:-100}
BATCH=${BATCH:-16}
SEQ=${SEQ:-1024}
PRECISION=${PRECISION:-bf16}
VOCAB=${VOCAB:-8192}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kubellm-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false

echo "== environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
  || echo "nvidia-smi: not available"
"$PY" - <<'EOF'
import importlib, sys
print("python", sys.version.split()[0])
for name in ("torch", "transformers", "accelerate", "tokenizers", "mlflow", "peft", "safetensors"):
    try:
        mod = importlib.import_module(name)
        print(f"{name} {getattr(mod, '__version__', '?')}")
    except Exception as exc:
        print(f"{name} MISSING ({type(exc).__name__}: {exc})")
try:
    import torch
    print("cuda", torch.cuda.is_available(), torch.version.cuda,
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-",
          "bf16", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
except Exception:
    pass
EOF

for need in torch transformers accelerate tokenizers; do
  "$PY" -c "import $need" 2>/dev/null || { echo "RESULT: $need missing: cannot train here"; exit 3; }
done

echo "== corpus"
"$PY" - "$REPO/examples/data/support-corpus.txt" "$WORK/corpus.txt" "${REPEAT:-200}" <<'EOF'
import random, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
rng = random.Random(0)
out = []
for _ in range(int(sys.argv[3])):  # 200: ~5 MB, more blocks than 100 steps x 16 use
    rng.shuffle(lines)
    out.extend(lines)
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print(len(out), "lines")
EOF

HAVE_MLFLOW=1
"$PY" -c "import mlflow" 2>/dev/null || HAVE_MLFLOW=0
URI="sqlite:///$WORK/mlflow.db"
COMMON=(--llm-name gpu-check --dataset "$WORK/corpus.txt" --tracking-uri "$URI"
        --max-steps "$STEPS" --batch-size "$BATCH" --sequence-length "$SEQ"
        --precision "$PRECISION" --logging-steps 10 --save-steps 100000 --eval-fraction 0.01
        --learning-rate 3e-4 --warmup-ratio 0.1)

train_stage() {  # name, extra args...
  local name=$1; shift
  echo "== $name"
  KUBELLM_TERMINATION_LOG="$WORK/$name.json" "$PY" -m kubellm.training "${COMMON[@]}" \
    --output-dir "$WORK/out-$name" "$@" 2> "$WORK/$name.err" | grep -E "^(step|trained|model:|registered|initial|dataset)"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then echo "$name failed (exit $rc):"; tail -25 "$WORK/$name.err"; fi
  cat "$WORK/$name.json" 2>/dev/null; echo
}

if [ "$HAVE_MLFLOW" = 1 ]; then
  "$PY" -c "from localkube.testing.mlflow import sqlite_tracking_uri as s; s('$WORK')" 2>/dev/null
  train_stage pretrain --method pretrain --architecture "$PRESET" --vocab-size "$VOCAB"
  train_stage finetune --method full --base-model models:/gpu-check@candidate
  if [ -n "${BIG_BATCH:-}" ]; then  # the same fine-tune with a larger batch (higher MFU)
    train_stage finetune-big --method full --base-model models:/gpu-check/1 \
      --batch-size "$BIG_BATCH" --registered-model gpu-check-big
  fi
else
  echo "mlflow missing: kubellm train cannot run here (it always tracks); plain Trainer only"
fi

echo "== plain transformers Trainer (same model and data)"
"$PY" "$REPO/bench/training.py" --plain-worker --preset "$PRESET" --dataset "$WORK/corpus.txt" \
  --steps "$STEPS" --batch-size "$BATCH" --sequence-length "$SEQ" --learning-rate 3e-4 \
  --vocab-size "$VOCAB" --precision "$PRECISION" --logging-steps 10 \
  > "$WORK/plain.json" 2> "$WORK/plain.err" || { echo "plain failed:"; tail -20 "$WORK/plain.err"; }
cat "$WORK/plain.json"; echo

echo "== result"
"$PY" - "$WORK" "${PEAK_TFLOPS:-}" <<'EOF'
import json, os, sys
work, peak_arg = sys.argv[1], sys.argv[2]
name = ""
try:
    import torch
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
except Exception:
    pass
peaks = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}
peak = float(peak_arg) if peak_arg else next((v for k, v in peaks.items() if k in name), None)
def load(n):
    try:  # the JSON is the last line (the plain script prints Trainer logs before it)
        lines = open(os.path.join(work, n + ".json")).read().strip().splitlines()
        return json.loads(lines[-1])
    except Exception:
        return None
rows = {n: load(n) for n in ("pretrain", "finetune", "finetune-big", "plain")}
for n, r in rows.items():
    if not r or "tokens_per_second" not in r or r.get("tokens_per_second") is None:
        print(f"{n}: no result ({(r or {}).get('error', 'not run')})")
        continue
    tps, params = r["tokens_per_second"], r["parameters"]
    mfu = f"{100 * 6 * params * tps / (peak * 1e12):.1f}%" if peak else "n/a (set PEAK_TFLOPS)"
    extra = f", eval loss {r['eval_loss']}" if r.get("eval_loss") is not None else ""
    print(f"RESULT {n}: {params / 1e6:.1f}M params, {tps:,.0f} tokens/s, MFU {mfu} "
          f"(peak {peak} TFLOP/s, {name}){extra}")
if rows["finetune"] and rows["plain"] and rows["finetune"].get("tokens_per_second"):
    print(f"RESULT ratio kubellm finetune / plain Trainer = "
          f"{rows['finetune']['tokens_per_second'] / rows['plain']['tokens_per_second']:.3f}")
EOF
