#!/usr/bin/env bash
# The distributed suite, run RUNS times in a row (default 3) while HOGS processes (default 2,
# one per core of the reference machine) keep the CPUs busy; prints pass/fail and the time of
# each run, and exits non-zero if any run failed. Checks that the distributed tests wait on
# events and states, not on timing.
#
#   bench/distributed_under_load.sh [pytest args...]   (default: the distributed test files)
#
# Environment: RUNS, HOGS, PYTHON (default: .venv/bin/python, else python3).
set -u
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
HOGS=${HOGS:-2}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
if [ $# -eq 0 ]; then
  set -- tests/integration/test_distributed.py tests/integration/test_distributed_faults.py \
    tests/integration/test_distributed_webhooks.py tests/integration/test_metrics_distributed.py \
    tests/integration/test_hosted_features_kafka.py tests/integration/test_kafka_queue.py
fi

hogs=()
stop_hogs() { for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done; }
trap stop_hogs EXIT
for _ in $(seq "$HOGS"); do
  "$PYTHON" -c 'while True: pass' &
  hogs+=("$!")
done
echo "CPU hogs: ${hogs[*]} (load: $(cut -d' ' -f1-3 /proc/loadavg))"

failed=0
for run in $(seq "$RUNS"); do
  log=$(mktemp -t distributed-run-XXXX.log)
  start=$(date +%s)
  "$PYTHON" -m pytest "$@" -q -p no:cacheprovider >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  summary=$(grep -E '^[0-9]+ (passed|failed)|passed|failed' "$log" | tail -1)
  if [ "$rc" -eq 0 ]; then verdict=PASS; else verdict=FAIL; failed=1; fi
  echo "run $run/$RUNS: $verdict in ${took}s (load $(cut -d' ' -f1-3 /proc/loadavg)): $summary  [log: $log]"
done
exit "$failed"
