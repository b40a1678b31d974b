#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -DTCPSTATED_FUZZ=ON) and runs each one
# for FUZZ_SECONDS on a temporary copy of its seed corpus, so the repository
# is not modified. Prints one summary line per target and a final
# "N passed, M failed" line; exits non-zero if any target crashed, leaked,
# timed out or broke an invariant.
#
#   tests/fuzz/run.sh                      # every target, 60 s each
#   FUZZ_SECONDS=20 tests/fuzz/run.sh      # CI: about 2-3 minutes in all
#   tests/fuzz/run.sh fuzz-decoder         # only the targets named
#
# Environment:
#   FUZZ_SECONDS    time per target (default 60)
#   FUZZ_JOBS       targets run at once (default: number of CPUs)
#   FUZZ_BUILD_DIR  build directory (default build-fuzz, in the repo root)
#   FUZZ_ARGS       extra libFuzzer flags for every target
#   FUZZ_LENIENT=1  skip fuzz_decoder.cpp's checks of a past (fixed) finding,
#                   to look for other ones should it ever regress
#   FUZZ_MERGE=1    after a clean run, merge the new inputs that add coverage
#                   into tests/fuzz/corpus/<target> (modifies the repo)
#   FUZZ_NO_BUILD=1 use the binaries already in FUZZ_BUILD_DIR
#   FUZZ_NO_DEPS=1  do not run scripts/dev deps (run as root otherwise, it
#                   installs the project's packages when some are missing)
#
# Crash reproducers, and the log of every run, are kept under
# $FUZZ_BUILD_DIR/fuzz-results/<target>/; rerun one with
#   $FUZZ_BUILD_DIR/tests/fuzz/<target> <reproducer>
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_ARGS=${FUZZ_ARGS:-}
CORPUS_ROOT="$ROOT/tests/fuzz/corpus"

# target, corpus directory, -max_len (bytes)
TARGETS=(
  "fuzz-config     config     8192"
  "fuzz-sock-diag  sock_diag  8192"
  "fuzz-decoder    decoder    8448"  # 66 event records of 128 bytes
  "fuzz-netstat    netstat    8192"
  "fuzz-cgroup     cgroup     2048"
  "fuzz-http-request http_request 8192"
  "fuzz-state-api  state_api  16384"
  "fuzz-state-file state_file 8192"
)

log() { echo "fuzz: $*" >&2; }

if (($# > 0)); then
  selected=()
  for name in "$@"; do
    found=
    for t in "${TARGETS[@]}"; do
      read -r tname _ _ <<<"$t"
      [[ $tname == "$name" ]] && selected+=("$t") && found=1
    done
    [[ -n $found ]] || { log "unknown target $name"; exit 2; }
  done
  TARGETS=("${selected[@]}")
fi

# ---- Toolchain -----------------------------------------------------------
# libFuzzer's runtime comes with clang's compiler-rt (libclang-rt-14-dev on
# Debian 12); the project's own dependencies come from scripts/dev.
ensure_toolchain() {
  if ! command -v clang++ >/dev/null; then
    log "clang++ not found (apt-get install clang)"
    exit 2
  fi
  local resource major runtime
  resource=$(clang++ -print-resource-dir)
  major=$(clang++ -dumpversion | cut -d. -f1)
  runtime="$resource/lib/linux/libclang_rt.fuzzer-$(uname -m).a"
  if [[ ! -f $runtime ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      log "installing libclang-rt-$major-dev (libFuzzer runtime)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "libclang-rt-$major-dev" >/dev/null
    else
      log "missing $runtime: apt-get install libclang-rt-$major-dev"
      exit 2
    fi
  fi
}

build() {
  if [[ ${FUZZ_NO_DEPS:-0} != 1 && $(id -u) -eq 0 && -x scripts/dev ]]; then
    scripts/dev deps
  fi
  ensure_toolchain
  local generator=()
  if [[ ! -f $FUZZ_BUILD_DIR/CMakeCache.txt ]] && command -v ninja >/dev/null; then
    generator=(-G Ninja)
  fi
  log "configuring $FUZZ_BUILD_DIR"
  cmake -S . -B "$FUZZ_BUILD_DIR" "${generator[@]}" \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTCPSTATED_FUZZ=ON -DTCPSTATED_BUILD_TESTS=OFF >/dev/null
  local names=()
  for t in "${TARGETS[@]}"; do
    read -r tname _ _ <<<"$t"
    names+=("$tname")
  done
  log "building ${names[*]}"
  cmake --build "$FUZZ_BUILD_DIR" -j "$(nproc 2>/dev/null || echo 2)" \
    --target "${names[@]}"
}

# ---- One target ----------------------------------------------------------
RESULTS="$ROOT/$FUZZ_BUILD_DIR/fuzz-results"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tcpstated-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1}
if [[ -z ${ASAN_SYMBOLIZER_PATH:-} ]] && command -v llvm-symbolizer >/dev/null; then
  ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer)
  export ASAN_SYMBOLIZER_PATH
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Runs one target; writes "$WORK/<target>.status" (0 or the exit code) and
# "$WORK/<target>.summary" (one line).
run_target() {
  local name=$1 corpus=$2 max_len=$3
  local bin="$ROOT/$FUZZ_BUILD_DIR/tests/fuzz/$name"
  local out="$RESULTS/$name"
  local work="$WORK/$name"
  rm -rf "$out"
  mkdir -p "$out" "$work/corpus"
  if [[ -d "$CORPUS_ROOT/$corpus" ]]; then
    cp -R "$CORPUS_ROOT/$corpus/." "$work/corpus/"
  fi
  local seeds
  seeds=$(find "$work/corpus" -type f | wc -l)
  local status=0
  # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
  "$bin" "$work/corpus" \
    -max_total_time="$FUZZ_SECONDS" -max_len="$max_len" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/" $FUZZ_ARGS >"$out/fuzz.log" 2>&1 || status=$?

  local execs cov ft corp
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log" |
    tail -n1)
  # The last status line: "#N  DONE  cov: C ft: F corp: K/SIZE ..."
  local last
  last=$(grep -E '^#[0-9]+' "$out/fuzz.log" | tail -n1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  local artifacts
  artifacts=$(find "$out" -maxdepth 1 -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' -o -name 'slow-unit-*' \) | sort | tr '\n' ' ')
  if [[ $status -eq 0 && -z $artifacts ]]; then
    echo 0 >"$work.status"
    printf '%-15s PASS  %ss  execs=%s cov=%s ft=%s corpus=%s->%s\n' \
      "$name" "$FUZZ_SECONDS" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
      "$seeds" "${corp:-?}" >"$work.summary"
    if [[ ${FUZZ_MERGE:-0} == 1 ]]; then
      mkdir -p "$CORPUS_ROOT/$corpus"
      "$bin" -merge=1 -max_len="$max_len" "$CORPUS_ROOT/$corpus" \
        "$work/corpus" >>"$out/merge.log" 2>&1 || true
    fi
  else
    [[ $status -eq 0 ]] && status=1
    echo "$status" >"$work.status"
    printf '%-15s FAIL  exit=%s execs=%s cov=%s  reproducer: %s log: %s\n' \
      "$name" "$status" "${execs:-?}" "${cov:-?}" "${artifacts:-none}" \
      "$out/fuzz.log" >"$work.summary"
  fi
}

# Details of a failed target: the reproducer in hex and the report.
explain_failure() {
  local name=$1
  local out="$RESULTS/$name"
  echo "---- $name ----------------------------------------------------------"
  local f
  for f in "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* \
    "$out"/slow-unit-*; do
    [[ -f $f ]] || continue
    echo "reproducer $f ($(wc -c <"$f") bytes), hex:"
    if command -v xxd >/dev/null; then
      head -c 4096 "$f" | xxd -p
    else
      head -c 4096 "$f" | od -An -tx1 -v | tr -d ' \n'
      echo
    fi
  done
  # From the first report line to the end, bounded.
  local start
  start=$(grep -nE '^==[0-9]+==|runtime error:|invariant violated|terminate called|^INFO: Running with|deadly signal|ERROR: libFuzzer' \
    "$out/fuzz.log" | grep -vE 'INFO: Running with' | head -n1 | cut -d: -f1)
  if [[ -n $start ]]; then
    tail -n +"$start" "$out/fuzz.log" | head -n 80
  else
    tail -n 40 "$out/fuzz.log"
  fi
}

# ---- Main ----------------------------------------------------------------
if [[ ${FUZZ_NO_BUILD:-0} != 1 ]]; then
  build
fi
mkdir -p "$RESULTS"
log "running ${#TARGETS[@]} target(s) for ${FUZZ_SECONDS}s each, $FUZZ_JOBS at a time"

running=0
for t in "${TARGETS[@]}"; do
  read -r tname tcorpus tlen <<<"$t"
  if ((running >= FUZZ_JOBS)); then
    wait -n || true
    running=$((running - 1))
  fi
  run_target "$tname" "$tcorpus" "$tlen" &
  running=$((running + 1))
done
wait || true

passed=0
failed=0
failed_names=()
for t in "${TARGETS[@]}"; do
  read -r tname _ _ <<<"$t"
  if [[ -f "$WORK/$tname.summary" ]]; then
    cat "$WORK/$tname.summary"
  else
    echo "$tname FAIL  (no result)"
  fi
  if [[ $(cat "$WORK/$tname.status" 2>/dev/null || echo 1) == 0 ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_names+=("$tname")
  fi
done
for name in "${failed_names[@]+"${failed_names[@]}"}"; do
  explain_failure "$name"
done
echo "$passed passed, $failed failed"
((failed == 0))
