#!/usr/bin/env bash
# One prepared run of the throughput benchmarks on an accelerator machine (issue 13, section 6): the inner loop
# (symbolic vs hand-written, P up to 8192), the spiking interpreter, the end-to-end search against the inner loop at
# population >= 1024, the batch knee for `search.children: auto`, chunk invariance on the device, and the quickstart's
# phases. Each part has its own time limit and writes JSON to $OUT (or ./bench_out); a part that fails or times out
# does not stop the others. Run from the repository root:
#
#     OUT=/tmp/out bash scripts/bench_device.sh [quick]
#     OUT=/tmp/out BEFORE=DIR bash scripts/bench_device.sh search [quick] [profile]
#
# `quick` shrinks every size (a smoke run of the script itself on a CPU). `search` runs only the end-to-end search
# (population 2048, 1024 children) and the quickstart's phases, each with this tree and with the older tree in
# BEFORE (e.g. `git archive REV plasticity_search scripts search_spaces | tar -x -C DIR`), one after the other; this
# tree's search with `search.generations_per_call: 4` (generations on the device, 24 of them) and with the FEC
# cache off on the host path (`--no-fec`: what the device generations gain beyond evaluating every child); and the
# batch knee at 64 and 1024 with XLA's default command buffers and with while loops and conditionals captured too
# (CUDA graphs: a call of 200 steps cost at least 8.8 ms on the H200, about 44 us a step).
# `search profile` adds a cProfile of this tree's steady search (where a generation's host time goes).
set -u
OUT=${OUT:-bench_out}
mkdir -p "$OUT"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(pwd)" PYTHONUNBUFFERED=1 WANDB_MODE=disabled
export PLASTICITY_SEARCH_JAX_CACHE=0        # cold compile times: a bare machine has no cache anyway
Q=${1:-}
part() {   # name, seconds, command...
  local name=$1 secs=$2; shift 2
  local t0=$(date +%s)
  timeout "$secs" "$@" > "$OUT/$name.json" 2> "$OUT/$name.err"
  local rc=$?
  echo "== $name rc=$rc $(( $(date +%s) - t0 )) s"
  tail -c 1500 "$OUT/$name.json"; echo; grep -v "^WARNING\|^I0000\|^W0000" "$OUT/$name.err" | tail -5
}
if [ "$Q" = search ]; then
  Q=${2:-}; B=${BEFORE:?BEFORE=DIR: the older tree}
  g=8; c=1024; p=2048; qs=search_spaces/quickstart.yaml; kn="64 1024"
  [ "$Q" = quick ] && { g=3; c=64; p=128; kn="16 64"; }
  CB="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,CONDITIONAL,WHILE"
  python -c "import jax; print(jax.devices(), jax.__version__)"
  part search_device 85 python scripts/bench_search.py --population $p --children $c --generations $((3 * g)) --generations-per-call 4 --repeats 3 --json
  part search_after 85 python scripts/bench_search.py --population $p --children $c --generations $g --repeats 3 --json
  part search_nofec 85 python scripts/bench_search.py --population $p --children $c --generations $g --repeats 3 --no-fec --json
  part search_before 85 env PYTHONPATH="$B:$PYTHONPATH" python "$B/scripts/bench_search.py" --population $p --children $c --generations $g --repeats 3 --json
  part knee_default 40 python scripts/bench_search.py --knee $kn --steps 200 --repeats 3 --json
  part knee_cmdbuf 40 env XLA_FLAGS="${XLA_FLAGS:-} $CB" python scripts/bench_search.py --knee $kn --steps 200 --repeats 3 --json
  [ "${2:-}" = profile ] || [ "${3:-}" = profile ] && \
    part profile 70 python scripts/bench_search.py --population $p --children $c --generations $g --repeats 1 --profile 40 --json
  part quickstart_after 80 python scripts/bench_search.py --config $qs --json
  part quickstart_before 80 env PYTHONPATH="$B:$PYTHONPATH" python "$B/scripts/bench_search.py" --config "$B/$qs" --json
  ls -la "$OUT"; exit 0
fi
python -c "import jax; print(jax.devices(), jax.__version__)"
if [ "$Q" = quick ]; then
  part inner 120 python scripts/bench_inner_loop.py --pops 64 --steps 200 --repeats 2 --fa-rows --legacy --json
  part spiking 120 python scripts/bench_spiking.py --pop 16 --steps 200 --repeats 2 --json
  part search 300 python scripts/bench_search.py --population 128 --children 64 --generations 3 --repeats 2 --json
  part knee 300 python scripts/bench_search.py --knee 8 16 32 --steps 100 --repeats 2 --json
  part chunks 200 python scripts/bench_search.py --chunk-check 64 --json
else
  part inner 130 python scripts/bench_inner_loop.py --pops 64 8192 --steps 1000 --repeats 3 --fa-rows --legacy --json
  part search 80 python scripts/bench_search.py --population 2048 --children 1024 --generations 8 --repeats 3 --json
  part knee 50 python scripts/bench_search.py --knee 64 256 1024 4096 16384 --steps 200 --repeats 2 --json
  part spiking 60 python scripts/bench_spiking.py --pop 64 1024 --steps 1000 --repeats 2 --json
  part search_big 60 python scripts/bench_search.py --population 16384 --children 8192 --generations 6 --repeats 2 --json
  part knee_deep 40 python scripts/bench_search.py --knee 64 256 1024 4096 --hidden-layers 170 130 100 70 --seeds 4 --steps 100 --repeats 2 --json
  part chunks 25 python scripts/bench_search.py --chunk-check 256 --json
fi
ls -la "$OUT"
