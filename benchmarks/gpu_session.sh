#!/usr/bin/env bash
# One device call's worth of replication runs on a lent GPU (issue 7), trained, analysed and
# packed inside a single command, because a session's device time (15 minutes, starts and idle
# time included) fits one call of at most 10 minutes.
#
#   bash benchmarks/gpu_session.sh RUNS OUT TRAIN_S END_S
#
# Environment (each a sweep argument line without --device/--threads/--out):
#   WAVE1   lines started at once, one background sweep each
#   WAVE2   sweep arguments without --seeds for a second wave of seed pairs, started while
#           wave 1 trains only if its worst case fits: WAVE2_SEEDS (candidates, in order),
#           WAVE2_RUN_STEPS (worst-case steps of one of its runs), WAVE2_RUNS_PER_SEED
#   DEVICE  (cuda); PY (python3); WHEELS: a folder of wheels to install under /tmp/site first
#   ANALYSES  what a run that finishes before END_S-120 gets (fourier norms; landscape needs the
#             run's checkpoints, which the slim copy does not carry, so it can only run here)
#
# Rules, chosen so that no run is kept or dropped for how it turned out:
# - a wave is launched whole and at once; wave 2 only when the aggregate rate measured on wave 1
#   (all run-steps done / wall time since its start, so slow starts count against it) says that
#   wave 1's remaining worst case plus wave 2's worst case fit in 70% of the time left (steps its
#   runs had before this call, resumed or finished by an earlier one, do not count toward the rate);
# - at TRAIN_S every sweep still training is killed; a wave with any unfinished run is not
#   packed at all (its finished runs are the ones that grokked early), except that the lines of
#   WAVE1 marked "#each" (runs that are stage-1 pilots, trained at the full budget in any case)
#   are packed run by run;
# - finished runs get ANALYSES (fourier norms by default; those a run already has are skipped)
#   until END_S-120, then norms only until END_S-20, on the host's CPU as soon as they finish and
#   no live process holds their lock; every launched run's state goes to OUT/launched.json;
# - a line's runs are all those its dry run lists (new, to resume or extend, or finished by an
#   earlier call, so a wave that call left unfinished is packed whole now); a line the sweep
#   refuses is logged with its error and not started.
# tests/test_gpu_session.py runs the whole script on the CPU with a tiny wave.
# Then the kept runs are packed (mechgrok.transport: final checkpoint only, tars of <= 15 MiB).
#
# Measured on an H200 (2026-11-30, one run per process, no batching): nine processes (easy b/d/c
# seed 1, medium random b/d seeds 0, 42, 2) did about 148 run-steps/s in all (easy 14 and medium
# 18 steps/s each), and four medium processes alone also about 148: the GPU, not the host, was
# the limit (about 7 ms per medium step), far below the H100's 859 run-steps/s for 32 hard runs
# batched. So size a wave at about 150 run-steps/s unless it uses --batch-runs. In that session
# the easy runs reached step 6600 of 15000 by the deadline and were lost; the medium wave was
# finished by a second call (the same sweep line resumes it) and packed whole.
# On an H200 (2026-12-04, batched): control seeds 2-9 of the calibration reading as one batch of 8
# (--batch-runs 8 --workers 1) did about 350 run-steps/s and ended at 230 s (the last run grokked at
# 13600); until mechgrok/batch.py let go of each run as it left, every analysis of a run whose batch
# was still training was refused (its lock held), so only the last run got one.
set -u
RUNS=$1; OUT=$2; TRAIN_S=$3; END_S=$4
PY=${PY:-python3}; DEVICE=${DEVICE:-cuda}
T0=$SECONDS; mkdir -p "$RUNS" "$OUT"; W=$(mktemp -d)
log() { echo "[$((SECONDS - T0))s] $*" | tee -a "$OUT/session.log"; }
now() { echo $((SECONDS - T0)); }

# the paths of one sweep line (every run its dry run lists, see the rules above), then the sweep
# itself in its own process group
start_line() {  # $1 group name, $2 sweep arguments
  local plan
  if ! plan=$($PY -m mechgrok.sweep --dry-run --out "$RUNS" $2 2>&1); then
    log "not started $1: $2: $(echo "$plan" | tail -n 1)"; : >"$W/$1.paths"; return
  fi
  echo "$plan" | awk '$1 ~ /^(new|resume|extend|done)$/ {print $2}' >"$W/$1.paths"
  state "$W/$1.paths" >"$W/$1.start"  # steps trained before this call: wave 1's rate must not count them
  setsid $PY -m mechgrok.sweep --device "$DEVICE" --threads 1 --out "$RUNS" $2 >>"$W/sweep.log" 2>&1 </dev/null &
  echo $! >>"$W/pids"; log "start $1 ($(wc -l <"$W/$1.paths") runs): $2"
}
# per path: status last_step budget grokked time_to_grok (unreadable while being written: ? 0)
state() {
  cat "$@" 2>/dev/null | $PY -c '
import json, sys, h5py
for p in sys.stdin.read().split():
    try:
        with h5py.File(p, "r", locking=False) as f:
            a = f.attrs; cfg = json.loads(a["config"])
            print(p, a["status"], int(a["last_step"]), cfg["steps"], bool(a["grokked"]), int(a["time_to_grok"]))
    except Exception:
        print(p, "?", 0, 0, False, -1)'
}
# whether a live process holds the run's lock (a lock file left by a killed trainer is not held)
held() { $PY -c 'import sys; from mechgrok.runstore import lock_held; sys.exit(0 if lock_held(sys.argv[1]) else 1)' "$1"; }
analyse_finished() {  # W/waiting: the finished runs it left for a later round
  local t; t=$(now); : >"$W/waiting"
  state "$W"/*.paths | while read -r p st _; do
    [ "$st" = complete ] || [ "$st" = diverged ] || continue
    grep -qxF "$p" "$W/analysed" 2>/dev/null && continue
    held "$p" && { echo "$p" >>"$W/waiting"; continue; }  # its trainer has not let go yet: next round
    if [ "$t" -lt $((END_S - 120)) ]; then what=${ANALYSES:-fourier norms}
    elif [ "$t" -lt $((END_S - 20)) ]; then what="norms"; else continue; fi
    echo "$p" >>"$W/analysed"
    setsid bash -c 'for a in '"$what"'; do OMP_NUM_THREADS=2 '"$PY"' -m mechgrok.analyze $a "$0" --quiet --missing; done' \
      "$p" >>"$W/analyze.log" 2>&1 </dev/null &
    echo $! >>"$W/apids"; log "analyse ($what) $p"
  done
}

nvidia-smi -L 2>&1 | tee -a "$OUT/session.log"
# packages the machine lacks travel as wheels (WHEELS folder; WHEELS/extra is tried only if the first
# set does not import), then a 50-step run on DEVICE proves the whole path before anything starts
install() { $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$@" >>"$OUT/session.log" 2>&1; }
check() { $PY -m mechgrok.sweep --device "$DEVICE" --threads 1 --out "$W/check" --regimes hard --p 13 --train-end 5 \
            --steps 50 --arms dream --dream-k 10 --seeds 0 >>"$OUT/session.log" 2>&1; }
if [ -n "${WHEELS:-}" ]; then install "$WHEELS"/*.whl; export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}; fi
if ! check; then
  [ -n "${WHEELS:-}" ] && [ -d "$WHEELS/extra" ] && install "$WHEELS"/extra/*.whl
  check || { log "preflight failed"; tail -n 40 "$OUT/session.log"; exit 3; }
fi
log "preflight: a 50-step run trained on $DEVICE"
i=0; while IFS= read -r line; do
  [ -z "$line" ] && continue; i=$((i + 1)); args=${line%%#each*}
  start_line "w1_$i" "$args"; [ "$args" != "$line" ] && echo "w1_$i" >>"$W/each"
done <<<"${WAVE1:-}"
t1=$(now); launched2=0
while [ "$(now)" -lt "$TRAIN_S" ]; do
  sleep 10; analyse_finished
  alive=0; for p in $(cat "$W/pids" 2>/dev/null); do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
  if [ "$launched2" = 0 ] && [ -n "${WAVE2:-}" ] && { [ $(($(now) - t1)) -ge 150 ] || [ "$alive" = 0 ]; }; then
    launched2=1
    read -r done_steps left_steps <<<"$(awk 'NR == FNR {s[$1] = $3; next} $2 == "?" {next} {d += $3 - s[$1]
      if ($2 != "complete" && $2 != "diverged") l += $4 - $3} END {print d + 0, l + 0}' \
      <(cat "$W"/w1_*.start) <(state "$W"/w1_*.paths))"
    rate=$((done_steps / ($(now) - t1)))
    room=$((rate * (TRAIN_S - $(now)) * 7 / 10 - left_steps))
    n=$((room / (WAVE2_RUN_STEPS * WAVE2_RUNS_PER_SEED))); seeds=""
    for s in ${WAVE2_SEEDS//,/ }; do [ "$n" -le 0 ] && break; seeds=${seeds:+$seeds,}$s; n=$((n - 1)); done
    log "wave 1: $done_steps run-steps in $(($(now) - t1)) s = $rate/s; $left_steps worst-case steps left; room $room"
    if [ -n "$seeds" ]; then
      k=$(echo "$seeds" | tr ',' ' ' | wc -w)
      start_line w2 "$WAVE2 --seeds $seeds --workers $((k * WAVE2_RUNS_PER_SEED))"; continue
    else log "wave 2 not started: its worst case does not fit"; fi
  fi
  [ "$alive" = 0 ] && { [ "$launched2" = 1 ] || [ -z "${WAVE2:-}" ]; } && break
done
for p in $(cat "$W/pids" 2>/dev/null); do kill -- -"$p" 2>/dev/null && log "stopped sweep $p at the training deadline"; done
sleep 2
arunning() { local n=0; for p in $(cat "$W/apids" 2>/dev/null); do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done; echo $n; }
while [ "$(now)" -lt "$END_S" ]; do
  analyse_finished; [ "$(arunning)" = 0 ] && [ ! -s "$W/waiting" ] && break; sleep 5
done
for p in $(cat "$W/apids" 2>/dev/null); do kill -- -"$p" 2>/dev/null && log "stopped analysis $p at END_S"; done

# what to pack: every run of a wave that finished whole, and each finished run of an "#each" line
: >"$W/include"
for g in "$W"/*.paths; do
  name=$(basename "$g" .paths)
  state "$g" >"$W/$name.state"
  if grep -qxF "$name" "$W/each" 2>/dev/null; then
    awk '$2 == "complete" || $2 == "diverged" {print $1}' "$W/$name.state" >>"$W/include"
  elif ! awk '$2 != "complete" && $2 != "diverged" {bad = 1} END {exit bad}' "$W/$name.state"; then
    log "$name not packed: not every run finished"
  else cat "$g" >>"$W/include"; fi
done
cat "$W"/*.state | $PY -c '
import json, sys
keys = ("path", "status", "last_step", "budget", "grokked", "time_to_grok")
rows = [dict(zip(keys, l.split())) for l in sys.stdin if l.strip()]
for r in rows:
    r.update(last_step=int(r["last_step"]), budget=int(r["budget"]), grokked=r["grokked"] == "True",
             time_to_grok=int(r["time_to_grok"]))
json.dump(rows, open(sys.argv[1], "w"), indent=1)' "$OUT/launched.json"
inc=$(sed "s|^$RUNS/||" "$W/include" | tr '\n' ' ')
log "packing: $inc"
[ -n "$inc" ] && $PY -m mechgrok.transport pack "$RUNS" --out "$OUT" --keep final --max-mb 15 --include $inc 2>&1 | tee -a "$OUT/session.log"
tail -c 60000 "$W/sweep.log" >"$OUT/sweep-tail.log"; tail -c 30000 "$W/analyze.log" >>"$OUT/sweep-tail.log" 2>/dev/null
log "done"; ls -la "$OUT"
