#!/usr/bin/env bash
# The papers' benchmarks (conf/experiment/*) as Hydra multiruns over the regulariser and seeds, with a
# reduced budget that runs on a 2-core CPU, each followed by `msgan report` (Markdown, CSV, plot).
# Usage: scripts/reproduce.sh SWEEP [STEPS] [SEEDS]     SWEEP: ring8 | ring8_unrolled | stacked | digits | fashion | pix2pix | drit | all
#   (grid25 with every regulariser: scripts/grid25_modes.sh)
# The default budgets (minutes on 2 CPU cores) are a small fraction of the papers'; the presets hold the full ones.
set -euo pipefail
sweep_name="${1:?usage: scripts/reproduce.sh ring8|ring8_unrolled|stacked|digits|fashion|pix2pix|drit|all [STEPS] [SEEDS]}"
root="multirun/reproduce-$(date +%Y%m%d-%H%M%S)"

run() {   # run NAME STEPS SEEDS OVERRIDES...
  local name="$1" steps="$2" seeds="$3"; shift 3
  msgan train -m "$@" "trainer.max_steps=$steps" "seed=$seeds" trainer.progress_bar=false hydra.sweep.dir="$root/$name"
  msgan report "$root/$name"
}

case "$sweep_name" in
  ring8)           # PacGAN Table 1 columns (modes, % HQ, KL); ~1 minute per run at 3,000 steps
    run ring8 "${2:-3000}" "${3:-0,1,2}" experiment=ring8_pacgan reg=none,ms,pacgan ;;
  ring8_unrolled)  # the Unrolled GAN setup: reg=none against reg=unrolled (k=5); ~10 minutes per unrolled run at 10,000 steps
    run ring8_unrolled "${2:-10000}" "${3:-0,1}" experiment=ring8_unrolled reg=none,unrolled ;;
  stacked)         # 1,000 modes; 26,000 samples scored; ~6 minutes per run at 1,500 steps
    run stacked "${2:-1500}" "${3:-0,1}" experiment=stacked_fashion_mnist_dcgan reg=none,ms model.width=32 ;;
  digits)          # MSGAN's categorical experiment on the embedded digits; ~3 minutes per run
    run digits "${2:-1500}" "${3:-0,1}" experiment=digits_cdcgan_ms reg=none,ms ;;
  fashion)         # the same on Fashion-MNIST; ~4 minutes per run at 1,500 steps
    run fashion "${2:-1500}" "${3:-0,1}" experiment=fashion_mnist_cdcgan_ms reg=none,ms model.width=32 trainer.eval_every=0 \
      trainer.best_metric=null eval.num_samples=5000 ;;
  pix2pix)         # MSGAN's Pix2Pix on the translation benchmark with known modes (modes found per input of 4);
                   # model=pix2pix's own budget, ~9 minutes per run on 2 cores
    run pix2pix "${2:-10000}" "${3:-0,1,2}" model=pix2pix reg=none,ms,dsgan,dpm ;;
  drit)            # MSGAN Table 4's DRIT, none vs ms, on the unpaired benchmark with known modes both ways
                   # (A->B of 4, B->A of 3); model=drit's own budget, ~8 minutes per run on 2 cores
    run drit "${2:-3000}" "${3:-0,1,2}" model=drit reg=none,ms ;;
  all)
    for name in ring8 digits stacked fashion ring8_unrolled pix2pix drit; do "$0" "$name"; done ;;
  *) echo "unknown sweep '$sweep_name'" >&2; exit 2 ;;
esac
