#!/usr/bin/env bash
# The second, shorter device run of BENCHMARKS.md "Filling the device": the end-to-end search after the
# bookkeeping was vectorised, chunk invariance on the device, and the knee of the quickstart's deep network.
set -u
OUT=${OUT:-bench_out}; mkdir -p "$OUT"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(pwd)" PYTHONUNBUFFERED=1 WANDB_MODE=disabled PLASTICITY_SEARCH_JAX_CACHE=0
part() { local name=$1 secs=$2; shift 2; local t0=$(date +%s)
  timeout "$secs" "$@" > "$OUT/$name.json" 2> "$OUT/$name.err"; echo "== $name rc=$? $(( $(date +%s) - t0 )) s"
  cat "$OUT/$name.json"; grep -v "^WARNING\|^I0000\|^W0000" "$OUT/$name.err" | tail -3; }
part search 100 python scripts/bench_search.py --population 2048 --children 1024 --generations 8 --repeats 3 --json
part chunks 50 python scripts/bench_search.py --chunk-check 256 --json
part knee_deep 70 python scripts/bench_search.py --knee 32 128 512 2048 --hidden-layers 170 130 100 70 --seeds 4 --steps 100 --repeats 2 --json
