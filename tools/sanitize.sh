#!/usr/bin/env bash
# Build fastact with AddressSanitizer + UndefinedBehaviorSanitizer (FASTACT_SANITIZE=1) in a
# scratch copy of this checkout (so the normal in-place build is left alone) and run the
# test suite on it, with libasan preloaded (python itself is not instrumented).
#
#   bash tools/sanitize.sh                 # the whole suite
#   bash tools/sanitize.sh tests/test_nn.py -k step      # any pytest arguments
#   FASTACT_SAN_DIR=build/asan bash tools/sanitize.sh   # where the copy goes (kept)
#
# ASan stops at the first invalid access with a report; UBSan is made fatal too
# (halt_on_error), so the run fails on any finding.  Leak detection is off here: the
# CPython interpreter itself leaks by design at exit; tools/leaks.py runs valgrind's leak
# check on fastact's own calls.  gcc (or clang) with libasan/libubsan is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
DIR=${FASTACT_SAN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/fastact-asan.XXXXXX")}
mkdir -p "$DIR"
# the tracked files of this checkout (with their uncommitted edits), nothing built
git ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$DIR")
cd "$DIR"
echo "== FASTACT_SANITIZE=1 build in $DIR"
FASTACT_SANITIZE=1 "$PY" setup.py -q build_ext --inplace -j 2 > build.log 2>&1 \
    || { tail -30 build.log; exit 1; }
CC=${CC:-gcc}
LIBASAN=$("$CC" -print-file-name=libasan.so)
LIBUBSAN=$("$CC" -print-file-name=libubsan.so)
[ -f "$LIBASAN" ] || { echo "libasan.so not found (via $CC -print-file-name)"; exit 1; }
export LD_PRELOAD="$LIBASAN $LIBUBSAN"
# reports go to files: pytest captures fd 2, and a halted process loses its capture
rm -f "$DIR"/san.log.*
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:allocator_may_return_null=1:log_path=$DIR/san.log
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$DIR/san.log
export PYTHONMALLOC=malloc        # every Python allocation through ASan's malloc
"$PY" -c "import fastact, sys; print('   ', fastact.__file__, '|', fastact.config()['build flags'])"
echo "== pytest under ASan + UBSan"
rc=0
"$PY" -m pytest -q -p no:cacheprovider -p no:randomly "$@" || rc=$?
if ls "$DIR"/san.log.* > /dev/null 2>&1; then
    echo "== sanitizer reports:"
    cat "$DIR"/san.log.*
    rc=1
fi
exit $rc
