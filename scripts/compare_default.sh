#!/usr/bin/env bash
# Reproduces the README's comparison: the embedded default (conditional DCGAN on digits) without and
# with mode seeking, the same seeds and budget, as one Hydra multirun, then one table of it.
# Usage: scripts/compare_default.sh [SEEDS]   e.g. scripts/compare_default.sh 0,1,2
# Cost: about 2.5 (reg=none) + 3 (reg=ms) minutes per seed on a 2-core CPU; under a minute on a GPU.
set -euo pipefail
seeds="${1:-0}"
sweep="multirun/compare-default-$(date +%Y%m%d-%H%M%S)"
msgan train -m reg=none,ms seed="$seeds" hydra.sweep.dir="$sweep" trainer.progress_bar=false
msgan report "$sweep"
