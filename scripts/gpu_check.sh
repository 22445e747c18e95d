#!/usr/bin/env bash
# What no CPU machine can tell us, in one call on a GPU machine (docs/performance.md#gpu): the install,
# the GPU-marked tests (the no-host-sync test among them), the step bench with bf16 autocast and
# channels_last, evaluation, the default run's wall time, the data pipeline against the models'
# appetite, then compile. Each step writes its log to $OUT (default gpu-logs/) as it goes and is cut
# at its budget and at the deadline, so a call that runs out of time still returns what finished.
# Usage: OUT=DIR [DEADLINE=540] scripts/gpu_check.sh    (DEADLINE: seconds for the whole script)
set -uo pipefail
out="${OUT:-gpu-logs}"
deadline=$(( SECONDS + ${DEADLINE:-540} ))
mkdir -p "$out"
export PYTHONUNBUFFERED=1

if ! nvidia-smi > "$out/gpu.txt" 2>&1; then
  echo "gpu_check.sh: no NVIDIA GPU here (nvidia-smi failed); this script is for a GPU machine." >&2
  exit 2
fi

step() {   # step NAME BUDGET_S COMMAND...: run it with the smaller of its budget and the time left
  local name="$1" budget="$2"; shift 2
  local left=$(( deadline - SECONDS - 5 ))
  (( budget > left )) && budget=$left
  if (( budget < 20 )); then
    echo "skipped: under 20 s left" > "$out/$name.log"
    return
  fi
  echo "== $name (at most ${budget} s)"
  local start=$SECONDS
  timeout "$budget" "$@" > "$out/$name.log" 2>&1
  local status=$?
  echo "exit $status after $(( SECONDS - start )) s" | tee -a "$out/$name.log"
}

step install 200 pip install -q -e '.[dev]'
step install_parallel 60 pip install -q -e '.[parallel]'   # the joblib launcher; without it its test skips
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
  >> "$out/gpu.txt" 2>&1
step gpu_tests 150 pytest -m gpu -x -q -p no:cacheprovider
step bench 170 python scripts/bench.py --device cuda --steps 10 --repeats 3
step default_run 60 bash -c 'time msgan train hydra.run.dir=outputs/gpu-default trainer.progress_bar=false'
step eval 40 python scripts/bench.py --eval --device cuda
step data 90 python scripts/bench.py --data --device cuda --steps 2
step compile 120 python scripts/bench.py --device cuda --steps 10 --repeats 3 --only "2D GAN" --compile
echo "logs in $out"
