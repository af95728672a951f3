#!/usr/bin/env bash
# Hunt flaky tests (issue 11, item 1): the whole suite N times in a row, each run in a
# random order (pytest-randomly, a new seed per run), alternating OMP_NUM_THREADS 1 and 2,
# then under pytest-xdist (-n 2) with 1 and 2 threads.  Every failing test id is listed
# with the run (and its -p randomly seed) that produced it.
#   bash tools/flake_hunt.sh [N=20] [LOGDIR=$TMPDIR/fastact-flakes]
# Needs pytest-randomly and pytest-xdist (pip install pytest-randomly pytest-xdist).
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
LOG=${2:-${TMPDIR:-/tmp}/fastact-flakes}
mkdir -p "$LOG"
fails=0
run() {   # $1: label, rest: pytest arguments
    local label=$1; shift
    local out="$LOG/$label.log"
    local seed=$(( (RANDOM << 15) | RANDOM ))
    python -m pytest -q -p no:cacheprovider -p randomly --randomly-seed="$seed" "$@" \
        > "$out" 2>&1
    local rc=$?
    echo "$label OMP_NUM_THREADS=${OMP_NUM_THREADS:-} --randomly-seed=$seed rc=$rc: $(tail -1 "$out")"
    if [ $rc -ne 0 ]; then
        fails=$((fails + 1))
        grep -E "^(FAILED|ERROR)" "$out" | sed "s/^/    /"
    fi
}
for i in $(seq 1 "$N"); do
    t=$(( (i % 2) + 1 ))
    OMP_NUM_THREADS=$t run "seq$i-omp$t"
done
for t in 1 2; do
    OMP_NUM_THREADS=$t run "xdist-omp$t" -p xdist -n 2 --benchmark-disable  # (pytest-benchmark warns under xdist otherwise)
done
echo "runs with a failure: $fails"
[ "$fails" -eq 0 ]
