#!/usr/bin/env bash
# The replication's GPU stage (issue 7): many seeds per arm through the batched trainer on one
# CUDA device, in the background, then analysed and packed so that the finished runs can travel
# back to the machine that writes the report (mechgrok/transport.py).
#
#   bash benchmarks/gpu_stage.sh start RUNS LOGS    start the sweeps (returns at once)
#   bash benchmarks/gpu_stage.sh wait LOGS SECONDS  wait until every stream ended, or SECONDS passed
#   bash benchmarks/gpu_stage.sh pack RUNS OUT [PATTERN...]
#                                                   analyse (fourier, norms) the finished runs and pack
#                                                   them (those matching PATTERN, relative to RUNS)
#
# Every sweep is resumable and skips finished runs; seeds 0-9 are those the CPU sweeps do not
# train at the full budget (seed 42 of the stated readings, and medium random-split seeds
# 42, 0, 1, are trained on the CPU), so the two sets of run files never share a path.
# Measured on an H100 (2026-11-24): the three streams below share the GPU at about 670
# run-steps/s in all and reach step ~5000 of 30000 in 9 minutes, so `start` needs about 50
# minutes of one machine, more than a 30-minute device session holds one (and processes die
# with the machine). One process with R = 32 does 859 run-steps/s: a 30k-step batch of one arm
# takes about 19 minutes. What ran instead is in the README ("Replication").
set -u
cmd=$1
PY=${PY:-python3}
SWEEP="$PY -m mechgrok.sweep --device cuda --batch-runs 10 --threads 1"

if [ "$cmd" = start ]; then
  runs=$2; logs=$3; mkdir -p "$runs" "$logs"
  # stream 1: the hard regime as stated (C3-C6, C9-C11), every batchable arm
  setsid nohup $SWEEP --regimes hard --arms baseline dream control grokfast --seeds 0-9 --out "$runs" \
    --workers 4 >"$logs/hard.log" 2>&1 </dev/null &
  # stream 2: medium then easy as stated (C1, C2, C7)
  setsid nohup bash -c "$SWEEP --regimes medium --arms baseline dream control --seeds 0-9 --out $runs --workers 3; \
    $SWEEP --regimes easy --arms baseline dream control --seeds 0-9 --out $runs --workers 3" \
    >"$logs/medium-easy.log" 2>&1 </dev/null &
  # stream 3: the open readings (random split at the stated coverage; mini-batches of 512)
  setsid nohup bash -c "$SWEEP --regimes hard --arms baseline dream control --seeds 0-9 --split random --out $runs --workers 3; \
    $SWEEP --regimes medium --arms baseline dream control --seeds 2-11 --split random --out $runs --workers 3; \
    $SWEEP --regimes hard --arms baseline dream control --seeds 0-9 --batch-size 512 --out $runs --workers 3" \
    >"$logs/readings.log" 2>&1 </dev/null &
  jobs -p >"$logs/pids"   # the stream leaders; `wait` polls these (never `pgrep -f`, which also
  echo "started $(wc -l <"$logs/pids") streams"   # matches the shell whose command line names them)
elif [ "$cmd" = wait ]; then
  logs=$2; end=$((SECONDS + $3))
  alive() { local n=0; for p in $(cat "$logs/pids"); do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done; echo $n; }
  while [ "$(alive)" -gt 0 ] && [ $SECONDS -lt $end ]; do sleep 10; done
  echo "$(alive) streams still running"
elif [ "$cmd" = pack ]; then
  runs=$2; out=$3; shift 3; mkdir -p "$out"
  # only finished runs are analysed (a run being trained is skipped: its lock is held), on the
  # CPU cores, 8 processes of 2 threads: fourier on seeds 0-2 of the hard readings (C6), norms on all
  export OMP_NUM_THREADS=2
  ls "$runs"/hard/*/seed[0-2].h5 "$runs"/hard@split=random/*/seed[0-2].h5 2>/dev/null |
    xargs -r -n 2 -P 8 $PY -m mechgrok.analyze fourier --quiet >>"$out/analyze.txt" 2>&1
  find "$runs" -name '*.h5' | xargs -r -n 8 -P 8 $PY -m mechgrok.analyze norms --quiet >>"$out/analyze.txt" 2>&1
  if [ $# -gt 0 ]; then inc=(--include "$@"); else inc=(); fi
  $PY -m mechgrok.transport pack "$runs" --out "$out" --keep --max-mb 26 "${inc[@]}"
else
  echo "usage: gpu_stage.sh start RUNS LOGS | wait LOGS SECONDS | pack RUNS OUT [PATTERN...]" >&2; exit 2
fi
