#!/usr/bin/env bash
# A table of modes captured on the 2D grid (25 Gaussians, PacGAN setup, docs/methods.md#mixtures-2d) for
# every regulariser, as Hydra multiruns, then one `msgan report` over them. "Every" is every registered
# regulariser that applies to the 2D GAN (scripts/regularizers.py): a new one joins without an edit here.
# Usage: scripts/grid25_modes.sh [STEPS] [SEEDS]      e.g. scripts/grid25_modes.sh 3000 0,1,2
# Two sweeps run side by side, one CPU thread each (on 2 cores that is ~1.35x the throughput of one
# 2-thread sweep): the Unrolled GAN alone (k=5 unrolled D steps, ~9x a plain step) and all the others.
# Cost at 3,000 steps and 3 seeds on a 2-core CPU: 85 minutes measured with the nine regularisers before
# ndiv and divco (the machine was also running other work); their runs take about 2 and 7-10 minutes
# each on one thread. PacGAN trained 400 epochs
# (400,000 steps); this budget is a small fraction of that.
set -euo pipefail
steps="${1:-3000}"
seeds="${2:-0,1,2}"
sweep="multirun/grid25-modes-$(date +%Y%m%d-%H%M%S)"
others="$(python "$(dirname "$0")/regularizers.py" --except unrolled experiment=grid25_pacgan)"
common=(experiment=grid25_pacgan "trainer.max_steps=$steps" "seed=$seeds" trainer.progress_bar=false)
OMP_NUM_THREADS=1 msgan train -m reg=unrolled "${common[@]}" hydra.sweep.dir="$sweep/unrolled" &
unrolled=$!
OMP_NUM_THREADS=1 msgan train -m "reg=none${others:+,$others}" "${common[@]}" hydra.sweep.dir="$sweep/others"
wait "$unrolled"
msgan report "$sweep"
