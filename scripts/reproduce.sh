#!/usr/bin/env bash
# The papers' benchmarks (conf/experiment/*) as Hydra multiruns over the regulariser and seeds, with a
# reduced budget that runs on a 2-core CPU, each followed by `msgan report` (Markdown, CSV, plot).
# Usage: [JOBS=N] [REGS=all] scripts/reproduce.sh SWEEP [STEPS] [SEEDS]     SWEEP: ring8 | ring8_unrolled | stacked | digits | fashion | pix2pix | drit | stackganpp | stargan | successors | all
#   (grid25 with every regulariser: scripts/grid25_modes.sh)
# Each sweep compares the regularisers listed below: those of the paper's table it reproduces (digits,
# fashion, drit, stackganpp: MSGAN's none against ms; ring8_unrolled: the Unrolled GAN's none against
# unrolled), or those of the measured table the docs show (ring8, stacked, pix2pix, stargan; successors: the
# README's ndiv and divco against ms and none). REGS=all
# replaces each list by reg=none and every registered regulariser that applies to the sweep's model
# (scripts/regularizers.py), so a new regulariser joins the sweeps without an edit here.
# The default budgets (minutes on 2 CPU cores) are a small fraction of the papers'; the presets hold the full ones.
set -euo pipefail
sweep_name="${1:?usage: scripts/reproduce.sh ring8|ring8_unrolled|stacked|digits|fashion|pix2pix|drit|stackganpp|stargan|successors|all [STEPS] [SEEDS]}"
root="multirun/reproduce-$(date +%Y%m%d-%H%M%S)"

# JOBS=N runs the seeds as N multiruns side by side, each with its share of the cores as torch threads
# (small models use 2 cores poorly: two 1-thread runs of DRIT take ~1.3x one 2-thread run's time, not 2x).
# The report reads every run under the sweep's folder, so the parts land in one table.
jobs="${JOBS:-1}"
case "${REGS:-listed}" in
  listed|all) ;;
  *) echo "REGS must be all (or unset: each sweep's listed regularisers); got '$REGS'" >&2; exit 2 ;;
esac
scripts="$(cd "$(dirname "$0")" && pwd)"

run() {   # run NAME STEPS SEEDS REGS OVERRIDES...: REGS, the sweep's listed reg= value (REGS=all: every one that applies)
  local name="$1" steps="$2" seeds="$3" reg="$4" status=0; shift 4
  if [ "${REGS:-listed}" = all ]; then   # the model the overrides choose is built once, each regulariser checked
    local applicable
    applicable="$(python "$scripts/regularizers.py" "$@")"
    reg="none${applicable:+,$applicable}"
  fi
  set -- "$@" "reg=$reg"
  if [ "$jobs" -le 1 ]; then
    msgan train -m "$@" "trainer.max_steps=$steps" "seed=$seeds" trainer.progress_bar=false hydra.sweep.dir="$root/$name" \
      || status=$?   # 2: some runs stopped (a divergence, a refusal) and the others went on
  else
    local threads=$(( $(nproc) / jobs > 0 ? $(nproc) / jobs : 1 )) part=0 pids=() seed_list
    IFS=, read -r -a seed_list <<< "$seeds"
    mkdir -p "$root/$name"   # its parent holds the parts' logs
    for (( part = 0; part < jobs && part < ${#seed_list[@]}; part++ )); do
      local mine=() i
      for (( i = part; i < ${#seed_list[@]}; i += jobs )); do mine+=("${seed_list[i]}"); done
      (IFS=,; OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads msgan train -m "$@" "trainer.max_steps=$steps" \
        "seed=${mine[*]}" trainer.progress_bar=false hydra.sweep.dir="$root/$name/part$part" \
        > "$root/$name.part$part.log" 2>&1) &
      pids+=($!)
    done
    local pid
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    [ "$status" -eq 0 ] || echo "a part of $name failed: see $root/$name.part*.log" >&2
  fi
  msgan report "$root/$name"   # the table of what finished, and why any run has no metrics
  [ "$status" -eq 0 ] || exit "$status"
}

case "$sweep_name" in
  ring8)           # PacGAN Table 1 columns (modes, % HQ, KL); ~1 minute per run at 3,000 steps
    run ring8 "${2:-3000}" "${3:-0,1,2}" none,ms,pacgan experiment=ring8_pacgan ;;
  ring8_unrolled)  # the Unrolled GAN setup: reg=none against reg=unrolled (k=5); ~10 minutes per unrolled run at 10,000 steps
    run ring8_unrolled "${2:-10000}" "${3:-0,1}" none,unrolled experiment=ring8_unrolled ;;
  stacked)         # 1,000 modes; 26,000 samples scored; ~6 minutes per run at 1,500 steps
    run stacked "${2:-1500}" "${3:-0,1}" none,ms experiment=stacked_fashion_mnist_dcgan model.width=32 ;;
  digits)          # MSGAN's categorical experiment on the embedded digits; ~3 minutes per run
    run digits "${2:-1500}" "${3:-0,1}" none,ms experiment=digits_cdcgan_ms ;;
  fashion)         # the same on Fashion-MNIST; ~4 minutes per run at 1,500 steps
    run fashion "${2:-1500}" "${3:-0,1}" none,ms experiment=fashion_mnist_cdcgan_ms model.width=32 trainer.eval_every=0 \
      trainer.best_metric=null eval.num_samples=5000 ;;
  pix2pix)         # MSGAN's Pix2Pix on the translation benchmark with known modes (modes found per input of 4);
                   # model=pix2pix's own budget, ~9 minutes per run on 2 cores
    run pix2pix "${2:-10000}" "${3:-0,1,2}" none,ms,dsgan,dpm model=pix2pix ;;
  drit)            # MSGAN Table 4's DRIT, none vs ms, on the unpaired benchmark with known modes both ways
                   # (A->B of 4, B->A of 3); model=drit's own budget, ~10 minutes per run on 2 cores
                   # (JOBS=3: the 3 seeds side by side, ~35 minutes for the 6 runs)
    run drit "${2:-2700}" "${3:-0,1,2}" none,ms model=drit ;;
  stackganpp)      # MSGAN Table 5's StackGAN++, none vs ms, on the caption benchmark with known modes (4 per
                   # caption), every stage, both evaluation settings (descriptions, fixed text codes);
                   # model=stackganpp's own budget
    run stackganpp "${2:-2000}" "${3:-0,1,2}" none,ms model=stackganpp ;;
  stargan)         # StarGAN on the multi-domain benchmark with known modes (4 per input and target domain):
                   # as published (no latent; reg none, and sn and sr on its WGAN-GP critic), then with a latent
                   # (model.nz=8) and reg=none, ms, dpm; one report
    run stargan/published "${2:-4000}" "${3:-0,1,2}" none,sn,sr model=stargan
    run stargan/latent "${2:-4000}" "${3:-0,1,2}" none,ms,dpm model=stargan model.nz=8
    msgan report "$root/stargan" ;;
  successors)      # the README's comparison of mode seeking's successors (ndiv, divco) with ms and none: the 2D grid
                   # at 3,000 steps (~2 minutes a run on one thread, divco 7-10) and pix2pix's benchmark at 2,000
                   # (~2-3 minutes); STEPS applies to both
    run successors/grid25 "${2:-3000}" "${3:-0,1}" none,ms,ndiv,divco experiment=grid25_pacgan
    run successors/pix2pix "${2:-2000}" "${3:-0,1}" none,ms,ndiv,divco model=pix2pix
    msgan report "$root/successors" ;;
  all)
    for name in ring8 digits stacked fashion ring8_unrolled pix2pix drit stackganpp stargan successors; do "$0" "$name"; done ;;
  *) echo "unknown sweep '$sweep_name'" >&2; exit 2 ;;
esac
