#!/usr/bin/env bash
# The replication's GPU stage (issue 7): full-budget hard-regime runs through the batched trainer
# on one CUDA device, in the background, then analysed and packed so that the finished runs can
# travel back to the machine that writes the report (mechgrok/transport.py).
#
#   [EXTRA="sweep flags"] bash benchmarks/gpu_stage.sh start RUNS LOGS "ARM..." [SEEDS]
#                                 start one sweep process: the hard regime as stated (or as EXTRA
#                                 changes it), the arms one after another, SEEDS (default 0-31)
#                                 as one batch per arm (returns at once)
#   bash benchmarks/gpu_stage.sh wait LOGS SECONDS
#                                 wait until the sweep ended, or SECONDS passed
#   bash benchmarks/gpu_stage.sh pack RUNS OUT [PATTERN...]
#                                 analyse (fourier on seeds 0-2 of every reading, norms on all) the
#                                 finished runs and
#                                 pack them (those matching PATTERN, relative to RUNS) into OUT
#
# Measured on an H100 (2026-11-24): one process with R = 32 does 859 run-steps/s, so a batch of
# 32 runs to 30000 steps takes about 19 minutes (less where runs grok and leave the batch).
# Processes die with the machine, and a device session holds one for at most 30 minutes and 10
# minutes per call, so: `start` in the first call, `wait LOGS 570` in the next calls (each made
# at once: an idle machine goes back after 30 s), `pack` in the last. Several sweep processes
# sharing the GPU did no better in all (about 670 run-steps/s for ten) and none finished.
# Since 2026-11: a session gets 15 minutes of device time in all and at most 8 files of 16 MiB
# come back per call (hence tars of at most 15 MiB), so a 19-minute batch no longer fits one
# session; benchmarks/gpu_session.sh runs what fits one call.
# The seeds 0-31 at the full budget are not trained on the CPU (seed 42 is), so the two sets of
# run files never share a path. The calibration reading (runs stop 2000 steps after grokking, near
# step 5600) fits both arms in one session:
#   EXTRA="--steps 20000 --split random --train-fraction 0.3 --lr 1e-3 --weight-decay 1.0" \
#     bash benchmarks/gpu_stage.sh start /tmp/runs /tmp/logs "baseline dream" 2-33
set -u
cmd=$1
PY=${PY:-python3}

if [ "$cmd" = start ]; then
  runs=$2; logs=$3; arm=$4; seeds=${5:-0-31}; mkdir -p "$runs" "$logs"
  setsid nohup $PY -m mechgrok.sweep --device cuda --threads 1 --workers 1 --batch-runs 32 --regimes hard \
    --arms $arm --seeds "$seeds" ${EXTRA:-} --out "$runs" >"$logs/sweep.log" 2>&1 </dev/null &
  echo $! >"$logs/pids"   # `wait` polls this pid (never `pgrep -f`, which also matches the shell
  echo "started"          # whose command line names the sweep)
elif [ "$cmd" = wait ]; then
  logs=$2; end=$((SECONDS + $3))
  alive() { local n=0; for p in $(cat "$logs/pids"); do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done; echo $n; }
  while [ "$(alive)" -gt 0 ] && [ $SECONDS -lt $end ]; do sleep 10; done
  echo "$(alive) sweep(s) still running"; tail -n 1 "$logs/sweep.log"
elif [ "$cmd" = pack ]; then
  runs=$2; out=$3; shift 3; mkdir -p "$out"
  # only finished runs are analysed (a run being trained is skipped: its lock is held), on the
  # CPU cores, 8 processes of 2 threads: fourier on seeds 0-2 of every reading (C6), norms on all
  export OMP_NUM_THREADS=2
  ls "$runs"/*/*/seed[0-2].h5 2>/dev/null |
    xargs -r -n 2 -P 8 $PY -m mechgrok.analyze fourier --quiet >>"$out/analyze.txt" 2>&1
  find "$runs" -name '*.h5' | xargs -r -n 8 -P 8 $PY -m mechgrok.analyze norms --quiet >>"$out/analyze.txt" 2>&1
  if [ $# -gt 0 ]; then inc=(--include "$@"); else inc=(); fi
  $PY -m mechgrok.transport pack "$runs" --out "$out" --keep --max-mb 15 "${inc[@]}"
else
  echo "usage: [EXTRA=flags] gpu_stage.sh start RUNS LOGS \"ARM...\" [SEEDS] | wait LOGS SECONDS | pack RUNS OUT [PATTERN...]" >&2; exit 2
fi
