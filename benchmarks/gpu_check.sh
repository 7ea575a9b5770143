#!/usr/bin/env bash
# kdlab's one prepared GPU check (issue 14): the CUDA paths measured once, everything written under OUT.
#
#   benchmarks/gpu_check.sh [OUT_DIR] [--device cuda|cpu] [--tiny] [--fixture DIR] [--budget SECONDS]
#
# OUT_DIR: where every log and JSON goes (default: $OUT, which the device tool fetches back; else
#   ./gpu-check-out). The last line on stdout, and OUT_DIR/summary.json, is the one JSON summary.
# --device: cuda (default) or cpu. --tiny: seconds-long budgets, to test the script on a CPU
#   (tests/test_gpu_check.py); the real budget is meant for a GPU and takes about 6-8 minutes there.
# --fixture: the real-MNIST fixture in torchvision's layout (MNIST/raw/...). Default: $KDLAB_MNIST_FIXTURE,
#   else ../shared/datasets/mnist-10k beside the repository, else data/mnist-10k inside it (git-ignored:
#   copy the fixture there and name it in the device tool's carry when shared/ does not travel).
#   It is only read: every run trains on copies in a temporary folder.
# --budget: wall-clock seconds for the whole check (default 470, under the 8 minutes a device run
#   allows); a step that would start with less than 15 s left is skipped and reported as such.
#
# Steps, each timed, logged to OUT_DIR/STEP.log and allowed to fail without stopping the rest:
#   teacher         python -m kdlab teacher --dataset mnist (ConvNet, jitter) on the device
#   bench-digits    benchmarks/bench_train.py --device D: distill and 25-student sweep speed-ups, on the digits
#                   default experiment (the README's CPU figures are for it)
#   distill-device  the default `python -m kdlab distill --dataset mnist` on the device (bf16 autocast on CUDA)
#   distill-cpu     the same on the CPU (float32), with its own teacher: verdicts and accuracies compared
#   torchrun        torchrun --standalone --nproc_per_node=1 -m kdlab teacher --retrain
#   collective      a one-rank all_reduce through the backend kdlab would pick (NCCL on CUDA, gloo on the
#                   CPU): with one process kdlab never starts a process group, so torchrun alone tests no NCCL
#   bench-mnist     bench_train.py on the MNIST default experiment (1,000 labels, 60 epochs)
#   compile         one digits student distilled with compile=False and with compile=True (torch.compile),
#                   its own step so that a missing compiler toolchain costs no other figure
set -uo pipefail

usage() { sed -n '4,5p' "$0" | sed 's/^# *//'; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=""
DEVICE=cuda
TINY=0
FIXTURE=${KDLAB_MNIST_FIXTURE:-}
BUDGET=470
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=${2:-}; shift 2 ;;
    --device=*) DEVICE=${1#*=}; shift ;;
    --tiny) TINY=1; shift ;;
    --fixture) FIXTURE=${2:-}; shift 2 ;;
    --fixture=*) FIXTURE=${1#*=}; shift ;;
    --budget) BUDGET=${2:-}; shift 2 ;;
    --budget=*) BUDGET=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "gpu_check: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) if [ -n "$OUT_DIR" ]; then echo "gpu_check: one output folder only (got $OUT_DIR and $1)" >&2; exit 2; fi
       OUT_DIR=$1; shift ;;
  esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu_check: --device must be cuda or cpu, got '$DEVICE'" >&2; exit 2 ;; esac
case "$BUDGET" in ''|*[!0-9]*) echo "gpu_check: --budget takes whole seconds, got '$BUDGET'" >&2; exit 2 ;; esac
OUT_DIR=${OUT_DIR:-${OUT:-$REPO/gpu-check-out}}

if [ -z "$FIXTURE" ]; then
  for candidate in "$REPO/../shared/datasets/mnist-10k" "$REPO/data/mnist-10k"; do
    if [ -d "$candidate/MNIST/raw" ]; then FIXTURE=$candidate; break; fi
  done
fi
if [ -z "$FIXTURE" ] || [ ! -d "$FIXTURE/MNIST/raw" ]; then
  echo "gpu_check: no MNIST fixture (MNIST/raw/...) at '${FIXTURE:-../shared/datasets/mnist-10k or data/mnist-10k}';" \
       "pass --fixture DIR or set KDLAB_MNIST_FIXTURE" >&2
  exit 2
fi
FIXTURE=$(cd "$FIXTURE" && pwd)

mkdir -p "$OUT_DIR" || { echo "gpu_check: cannot create $OUT_DIR" >&2; exit 2; }
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kdlab-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$REPO" || exit 2
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
PYTHON=${PYTHON:-python}
if command -v torchrun >/dev/null 2>&1; then TORCHRUN=(torchrun); else TORCHRUN=("$PYTHON" -m torch.distributed.run); fi

START=$(date +%s)
DEADLINE=$((START + BUDGET))
: > "$OUT_DIR/steps.tsv"

# step NAME CAP_SECONDS COMMAND...: run with a timeout of min(CAP, time left), log, record rc and seconds.
step() {
  local name=$1 cap=$2; shift 2
  local left=$((DEADLINE - $(date +%s)))
  if [ "$left" -lt 15 ]; then
    printf '%s\tskipped\t0\n' "$name" >> "$OUT_DIR/steps.tsv"
    echo "== $name: skipped, ${left}s of the budget left" >&2
    return
  fi
  local limit=$((cap < left ? cap : left))
  echo "== $name (at most ${limit}s): $*" >&2
  local began rc elapsed
  began=$(date +%s%N)
  timeout --kill-after=10 "$limit" "$@" > "$OUT_DIR/$name.log" 2>&1
  rc=$?
  elapsed=$((($(date +%s%N) - began) / 1000000))
  printf '%s\t%s\t%d.%03d\n' "$name" "$rc" $((elapsed / 1000)) $((elapsed % 1000)) >> "$OUT_DIR/steps.tsv"
  echo "   rc=$rc; last lines:" >&2
  tail -n 4 "$OUT_DIR/$name.log" | sed 's/^/   | /' >&2
}

for copy in mnist mnist-cpu mnist-ddp; do  # the fixture stays untouched: each run writes into its own copy
  mkdir -p "$WORK/$copy" && cp -R "$FIXTURE/." "$WORK/$copy/" && chmod -R u+w "$WORK/$copy"
done
mkdir -p "$WORK/digits"

if [ "$TINY" = 1 ]; then
  TEACHER_OPTIONS=(--epochs 1)
  DISTILL_OPTIONS=(--teacher-epochs 1 --epochs 1 --seeds 2 --transfer-size 100)
  BENCH_OPTIONS=(--teacher-epochs 1 --epochs 1 --seeds 1 --transfer-size 100)
  DDP_EPOCHS=1
  COMPILE_EPOCHS=1
  COMPILE_TEACHER_EPOCHS=1
else
  TEACHER_OPTIONS=()
  DISTILL_OPTIONS=()
  BENCH_OPTIONS=()
  DDP_EPOCHS=3
  COMPILE_EPOCHS=150
  COMPILE_TEACHER_EPOCHS=0
fi
MNIST=(--dataset mnist --offline --no-progress)

# What ran where: torch, CUDA, the GPU's name, and nvidia-smi when the machine has it.
"$PYTHON" - "$OUT_DIR/environment.json" <<'EOF' 2> "$OUT_DIR/environment.log"
import json, os, platform, sys
import torch
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(), "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "host": platform.node()}
if torch.cuda.is_available():
    info |= {"gpu": torch.cuda.get_device_name(0), "gpu_count": torch.cuda.device_count(),
             "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
             "bf16_supported": torch.cuda.is_bf16_supported(),
             "nccl_available": torch.distributed.is_nccl_available()}
info["gloo_available"] = torch.distributed.is_available() and torch.distributed.is_gloo_available()
json.dump(info, open(sys.argv[1], "w"), indent=2)
EOF
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi > "$OUT_DIR/nvidia-smi.txt" 2>&1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT_DIR/nvidia-smi-query.csv" 2>&1
fi
if [ "$DEVICE" = cuda ] && ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "gpu_check: --device cuda, but torch sees no CUDA device (see $OUT_DIR/environment.json); the CUDA steps will fail" >&2
fi

cat > "$WORK/collective.py" <<'EOF'
# One rank, one all_reduce, through the backend kdlab.distributed.join would choose for the device.
import json, os, sys
import torch
import torch.distributed as dist
device = torch.device(sys.argv[1] if sys.argv[1] == "cpu" else f"cuda:{os.environ.get('LOCAL_RANK', 0)}")
backend = "nccl" if device.type == "cuda" else "gloo"
if device.type == "cuda":
    torch.cuda.set_device(device)
dist.init_process_group(backend)
value = torch.full((4,), float(dist.get_rank() + 1), device=device)
dist.all_reduce(value)
json.dump({"backend": dist.get_backend(), "world_size": dist.get_world_size(),
           "all_reduce": value.tolist()}, open(sys.argv[2], "w"))
dist.destroy_process_group()
EOF

cat > "$WORK/compile.py" <<'EOF'
# distill(compile=True) against compile=False on the digits default experiment, one student each.
import json, sys, time
import torch
from kdlab import experiment
from kdlab.models import build_model, student_spec
from kdlab.train import distill, evaluate, pick_device

root, device, epochs, target = sys.argv[1], pick_device(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
(pool, _, test), teacher, _ = experiment.load_data_and_teacher("digits", root=root, device=device, progress=False,
                                                                teacher_epochs=int(sys.argv[5]) or None)
setting = experiment.setting_for("digits")
train = pool  # transfer sets are drawn from the pool, as in every experiment
transfer = train.subset(setting.transfer_size)
spec = student_spec(train.input_shape, setting.student, train.num_classes)
results = {"epochs": epochs}
for compiled in (False, True):
    student = build_model(spec, seed=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    distill(student, teacher, transfer, T=setting.T, alpha=setting.alpha, epochs=epochs, seed=0, device=device,
            progress=False, compile=compiled)
    if device.type == "cuda":
        torch.cuda.synchronize()
    name = "compiled" if compiled else "eager"
    results[f"{name}_seconds"] = time.perf_counter() - start
    results[f"{name}_accuracy"] = evaluate(student, test, device=device)["accuracy"]
    print(name, results[f"{name}_seconds"], results[f"{name}_accuracy"], flush=True)
json.dump(results, open(target, "w"), indent=2)
EOF

step teacher 150 "$PYTHON" -m kdlab teacher "${MNIST[@]}" --data-root "$WORK/mnist" --device "$DEVICE" \
  "${TEACHER_OPTIONS[@]}" --json "$OUT_DIR/teacher.json"
step bench-digits 150 "$PYTHON" benchmarks/bench_train.py --device "$DEVICE" --dataset digits \
  --data-root "$WORK/digits" "${BENCH_OPTIONS[@]}" --json "$OUT_DIR/bench-digits.json"
step distill-device 120 "$PYTHON" -m kdlab distill "${MNIST[@]}" --data-root "$WORK/mnist" --device "$DEVICE" \
  "${DISTILL_OPTIONS[@]}" --json "$OUT_DIR/distill-device.json"
step distill-cpu 240 "$PYTHON" -m kdlab distill "${MNIST[@]}" --data-root "$WORK/mnist-cpu" --device cpu \
  "${DISTILL_OPTIONS[@]}" --json "$OUT_DIR/distill-cpu.json"
step torchrun 120 "${TORCHRUN[@]}" --standalone --nproc_per_node=1 -m kdlab teacher --retrain "${MNIST[@]}" \
  --data-root "$WORK/mnist-ddp" --device "$DEVICE" --epochs "$DDP_EPOCHS" --json "$OUT_DIR/torchrun-teacher.json"
step collective 60 "${TORCHRUN[@]}" --standalone --nproc_per_node=1 "$WORK/collective.py" "$DEVICE" \
  "$OUT_DIR/collective.json"
step bench-mnist 200 "$PYTHON" benchmarks/bench_train.py --device "$DEVICE" --dataset mnist --offline \
  --data-root "$WORK/mnist" "${BENCH_OPTIONS[@]}" --json "$OUT_DIR/bench-mnist.json"
# --tiny: TORCH_COMPILE_DISABLE=1 runs the step's plumbing without the ~45 s CPU compilation
step compile 150 env TORCH_COMPILE_DISABLE="$TINY" "$PYTHON" "$WORK/compile.py" "$WORK/digits" "$DEVICE" "$COMPILE_EPOCHS" "$OUT_DIR/compile.json" \
  "$COMPILE_TEACHER_EPOCHS"

"$PYTHON" - "$OUT_DIR" "$DEVICE" "$TINY" "$FIXTURE" "$START" <<'EOF'
import json, sys, time
from pathlib import Path

out, device, tiny, fixture, start = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", sys.argv[4], float(sys.argv[5])


def load(name):
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError):
        return None


steps = {}
for line in (out / "steps.tsv").read_text().splitlines():
    name, rc, seconds = line.split("\t")
    steps[name] = {"status": "skipped" if rc == "skipped" else "ok" if rc == "0" else
                   "timed out" if rc in ("124", "137") else f"failed (rc {rc})",
                   "seconds": round(float(seconds), 1), "log": f"{name}.log"}
summary = {"date": time.strftime("%Y-%m-%d"), "device": device, "tiny_budget": tiny, "fixture": fixture,
           "environment": load("environment.json"), "steps": steps}
if (out / "nvidia-smi-query.csv").exists():
    summary["nvidia_smi"] = (out / "nvidia-smi-query.csv").read_text().strip()

teacher = load("teacher.json")
if teacher:
    summary["teacher"] = {"accuracy": teacher["teacher"]["accuracy"], "epochs": teacher["teacher"]["epochs"],
                          "seconds": steps["teacher"]["seconds"]}

for name in ("bench-digits", "bench-mnist"):
    bench = load(f"{name}.json")
    if bench:
        keys = ("dataset", "epochs", "seeds", "transfer_size", "distill_seconds", "tutorial_seconds",
                "distill_speedup", "accuracies_within_seed_noise", "sweep_seconds", "one_at_a_time_seconds",
                "sweep_speedup", "sweep_max_accuracy_difference", "compiled_seconds", "compiled_speedup",
                "compile_error")
        summary[name.replace("-", "_")] = {key: bench[key] for key in keys if key in bench} | {
            "sweep_goal_15x_met": bench["sweep_speedup"] >= 15}


def experiment(result):
    return {"teacher_accuracy": result["teacher"]["accuracy"], "baseline": result["baseline"]["mean"],
            "baseline_sd": result["baseline"]["sd"], "distilled": result["distilled"]["mean"],
            "distilled_sd": result["distilled"]["sd"], "gain": result["gain"], "verdict": result["verdict"]}


runs = {where: load(f"distill-{where}.json") for where in ("device", "cpu")}
runs = {where: experiment(result) for where, result in runs.items() if result and "verdict" in result}
if runs:
    summary["distill"] = {f"{device} (bf16 autocast)" if device == "cuda" and where == "device" else
                          "cpu (float32)" if where == "cpu" else device: result for where, result in runs.items()}
if len(runs) == 2:
    here, there = runs["device"], runs["cpu"]
    noise = {key: 2 * max(here[f"{key}_sd"], there[f"{key}_sd"]) for key in ("baseline", "distilled")}
    summary["device_vs_cpu"] = {
        "note": "each run trains its own teacher; students are paired within a run, not across runs",
        "same_verdict": here["verdict"] == there["verdict"],
        "teacher_accuracy_difference": here["teacher_accuracy"] - there["teacher_accuracy"],
        **{f"{key}_difference": here[key] - there[key] for key in ("baseline", "distilled")},
        "within_twice_the_larger_sd": all(abs(here[key] - there[key]) <= noise[key] for key in noise)}

ddp = load("torchrun-teacher.json")
if ddp:
    summary["torchrun"] = {"nproc_per_node": 1, "accuracy": ddp["teacher"]["accuracy"],
                           "epochs": ddp["teacher"]["epochs"], "seconds": steps["torchrun"]["seconds"],
                           "note": "world size 1: kdlab.distributed.join starts no process group; "
                                   "the collective step tests the backend"}
compiled = load("compile.json")
if compiled:
    summary["compile"] = compiled | {"note": "compiled_seconds includes the compilation" if not tiny else
                                     "--tiny: TORCH_COMPILE_DISABLE=1, nothing was compiled"}
collective = load("collective.json")
if collective:
    summary["collective"] = collective
summary["seconds"] = round(time.time() - start, 1)
summary["all_ok"] = all(step["status"] == "ok" for step in steps.values())
(out / "summary.json").write_text(json.dumps(summary, indent=2))
print(json.dumps(summary))
sys.exit(0 if summary["all_ok"] else 1)
EOF
