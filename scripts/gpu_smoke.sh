#!/usr/bin/env bash
# One shipped skill end to end on a CUDA machine (default config: QLoRA nf4 training, answers and
# scoring in bf16 on the GPU). Prints the card, generation and training tokens/s, peak GPU memory (nvidia-smi,
# sampled every 0.5 s), minutes per stage and the eval table; figures go to WORKDIR/stage_times.json.
#
#   scripts/gpu_smoke.sh [SKILL] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
SKILL=${1:-conventional-commits}
WORKDIR=${2:-$(mktemp -d -t s2l-gpu-XXXX)}
command -v nvidia-smi >/dev/null || { echo "gpu_smoke: no nvidia-smi; this script needs a CUDA machine" >&2; exit 1; }
make setup TORCH=torch   # the default (CUDA) torch wheel
.venv/bin/python -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA GPU'"
mkdir -p "$WORKDIR"
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$WORKDIR/gpu_memory_mib.txt" &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true' EXIT
HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/stage_times.py --skills "$SKILL" --workdir "$WORKDIR" \
  --json "$WORKDIR/stage_times.json"
kill $SAMPLER 2>/dev/null || true
.venv/bin/python - "$WORKDIR" "$SKILL" <<'PY'
import json, sys
from pathlib import Path

import torch

workdir, skill = Path(sys.argv[1]), sys.argv[2]
figures = json.loads((workdir / "stage_times.json").read_text())["skills"][skill]
memory = [int(line) for line in (workdir / "gpu_memory_mib.txt").read_text().split() if line.isdigit()]
usage = json.loads((workdir / "build" / "synthetic" / f"{skill}.usage.json").read_text())
print(f"\nGPU: {torch.cuda.get_device_name(0)}; peak GPU memory used: {max(memory, default=0)} MiB")
for role, counts in usage.items():
    if isinstance(counts, dict) and counts.get("wall_seconds"):
        print(f"{role}: {counts['completion_tokens'] / counts['wall_seconds']:.0f} completion tokens/s")
steps = [json.loads(line) for line in (workdir / "build" / "adapters" / f"{skill}.metrics.jsonl").read_text().splitlines()]
print(f"training: {len(steps)} steps, {sum(s['tokens'] for s in steps) / sum(s['seconds'] for s in steps):.0f} tokens/s, "
      f"peak CUDA memory allocated {max(s['peak_memory_mib'] for s in steps):.0f} MiB, final loss {steps[-1]['loss']:.4f}")
print("minutes per stage: " + ", ".join(f"{stage} {row['seconds'] / 60:.1f}" for stage, row in figures["stages"].items()))
print((workdir / "build" / "eval" / f"{skill}.md").read_text())
PY
