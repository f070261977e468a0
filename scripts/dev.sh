#!/usr/bin/env bash
# kms-plugin developer entry point for a fresh Debian 12 machine.
#
#   scripts/dev.sh run    install what is missing, build, start the plugin on a local keyring
#   scripts/dev.sh test   install what is missing, build, run every test (what CI runs: sanitize,
#                         fuzz, tsan, tidy)
#   scripts/dev.sh deps   only install what is missing
#   scripts/dev.sh build  deps + build
#   scripts/dev.sh release  deps + a Release build of only the kms-plugin binary
#                         (RELEASE_BUILD_DIR, default build-release; what ./Dockerfile runs)
#   scripts/dev.sh fuzz   a short libFuzzer + ASan/UBSan run of every parser of untrusted bytes
#                         (FUZZ_SECONDS each, default 20)
#   scripts/dev.sh sanitize  clang-14 ASan+UBSan build (tests + fuzzers, build-asan): every unit
#                         and integration test, any sanitizer report fatal
#   scripts/dev.sh tsan   clang-14 TSan build (build-tsan) of the concurrency tests, run them
#   scripts/dev.sh tidy   clang-tidy-14 (.clang-tidy) on every .cc, with build/compile_commands.json
#   scripts/dev.sh bench [--quick] [run_bench.py flags]  Release build, plugin vs gRPC floor
#
# Environment: BUILD_DIR (default ./build), JOBS (default: number of cores),
# KMS_PLUGIN_HOME (run: where the socket and keyring go; default /tmp/kms-plugin-dev).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl openssl
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libssl-dev libcurl4-openssl-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libabsl-dev
  libcli11-dev libyaml-cpp-dev libsodium-dev prometheus-cpp-dev libcivetweb-dev libp11-kit-dev
  libgtest-dev libgmock-dev libbenchmark-dev clang-14 libclang-rt-14-dev clang-tidy-14
  softhsm2 opensc etcd-server systemd
  python3 python3-boto3 python3-botocore python3-hvac python3-grpcio python3-protobuf
  python3-matplotlib python3-nacl python3-cryptography python3-yaml
  python3-azure python3-google-auth python3-googleapi python3-google-auth-httplib2
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) to run: $*" >&2; exit 1; fi
}

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "== all ${#PACKAGES[@]} packages present"
  fi
}

build() {
  deps
  echo "== building in $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

# The binary the container image ships (./Dockerfile): Release, no tests, no benchmarks.
release() {
  deps
  local dir=${RELEASE_BUILD_DIR:-build-release}
  echo "== building kms-plugin in $dir (Release)"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKMSP_BUILD_TESTS=OFF \
    -DKMSP_BUILD_BENCH=OFF >/dev/null
  cmake --build "$dir" -j "$JOBS" --target kms-plugin
}

run() {
  build
  local home=${KMS_PLUGIN_HOME:-/tmp/kms-plugin-dev}
  mkdir -p "$home" && chmod 700 "$home"
  echo "== starting kms-plugin (development keyring; Ctrl-C to stop)"
  echo "   socket:   unix://$home/kms.sock"
  echo "   keyring:  $home/keyring.json"
  echo "   admin:    unix://$home/kms.sock.admin"
  echo "   health:   http://127.0.0.1:8787/healthz  (metrics: /metrics)"
  echo "   check it: $BUILD_DIR/kms-plugin status --socket unix://$home/kms.sock"
  exec "$BUILD_DIR/kms-plugin" serve --listen "unix://$home/kms.sock" --kms local \
    --local-keyring "$home/keyring.json" --local-keyring-create --health-addr 127.0.0.1:8787
}

# What CI runs. Each step is timed (the summary at the end); SKIP_STEPS="tidy tsan" leaves steps out.
#   sanitize  one clang-14 ASan+UBSan build of the product, the tests and the fuzzers, and every
#             unit and integration test run in it (the kms-plugin the integration tests start is
#             that ASan build too);
#   fuzz      each libFuzzer target for FUZZ_SECONDS, in the same build;
#   tsan      the concurrency tests in a TSan build;
#   tidy      clang-tidy-14 on every .cc outside tests/, with the sanitize build's
#             compile_commands.json (see below).
# The GCC build of `run` and `build` is not repeated here: a full run must fit in 30 minutes on 2
# cores, and the suite runs once, under the sanitizers.
# The tidy step covers the product, fuzz and bench sources (TIDY_SCOPE=product, 93 of 188 files):
# on a 2-core machine the whole tree took 704 s and the full run 34.7 minutes, over the 30-minute
# budget. `scripts/dev.sh tidy` (and TIDY_SCOPE=all here) still checks the tests too; they were
# clean at b0593db.
# With both sanitize and tidy, clang-tidy starts once the ASan tree is built and runs in the
# background at the lowest CPU priority (nice 19) through the ASan tests, fuzz and tsan, taking
# the CPU they leave idle (tests waiting on processes and sockets, the TSan binaries run one at a
# time); its own compile database copy keeps it apart from the fuzz step's re-configure. The tidy
# step then waits for it and reports its findings as before.
test_all() {
  local steps=(${TEST_STEPS:-sanitize fuzz tsan tidy}) times=() t0 tidy_pid="" tidy_bg=0
  if [[ " ${steps[*]} " == *" sanitize "* && " ${steps[*]} " == *" tidy "* &&
        " ${SKIP_STEPS:-} " != *" sanitize "* && " ${SKIP_STEPS:-} " != *" tidy "* ]]; then
    tidy_bg=1
  fi
  for step in "${steps[@]}"; do
    if [[ " ${SKIP_STEPS:-} " == *" $step "* ]]; then times+=("$step: skipped"); continue; fi
    t0=$(date +%s)
    case "$step" in
      ctest)
        echo "== running every test"
        ctest --test-dir "$BUILD_DIR" -j "$JOBS" --output-on-failure --timeout 900 ;;
      sanitize)
        if [ "$tidy_bg" -eq 1 ]; then
          deps
          asan_build
          rm -f "$ASAN_BUILD_DIR/tidy-step.rc"
          mkdir -p "$ASAN_BUILD_DIR/tidy-db"
          cp "$ASAN_BUILD_DIR/compile_commands.json" "$ASAN_BUILD_DIR/tidy-db/"
          echo "== clang-tidy-14 starts in the background (nice 19; log $ASAN_BUILD_DIR/tidy-step.log)"
          ( renice -n 19 -p "$BASHPID" >/dev/null
            t=$(date +%s) rc=0
            BUILD_DIR=$ASAN_BUILD_DIR TIDY_DB=$ASAN_BUILD_DIR/tidy-db TIDY_SCOPE=${TIDY_SCOPE:-product} \
              tidy || rc=$?
            echo "   clang-tidy wall time: $(( $(date +%s) - t ))s"
            echo "$rc" > "$ASAN_BUILD_DIR/tidy-step.rc"
            exit "$rc" ) > "$ASAN_BUILD_DIR/tidy-step.log" 2>&1 &
          tidy_pid=$!
          # A failing step ends the script: take the background run (and its clang-tidys) along.
          trap 'pkill -P '"$tidy_pid"' 2>/dev/null || true; kill '"$tidy_pid"' 2>/dev/null || true' EXIT
          asan_tests
        else
          sanitize
        fi ;;
      tidy)
        if [ -n "$tidy_pid" ]; then
          echo "== waiting for the background clang-tidy"
          wait "$tidy_pid" 2>/dev/null || true
          cat "$ASAN_BUILD_DIR/tidy-step.log"
          [ "$(cat "$ASAN_BUILD_DIR/tidy-step.rc" 2>/dev/null)" = 0 ]
        else
          BUILD_DIR=$ASAN_BUILD_DIR TIDY_SCOPE=${TIDY_SCOPE:-product} tidy
        fi ;;
      *) "$step" ;;
    esac
    times+=("$step: $(( $(date +%s) - t0 ))s")
  done
  echo "== wall time per step"
  printf '   %s\n' "${times[@]}"
}

ASAN_BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
TSAN_BUILD_DIR=${TSAN_BUILD_DIR:-build-tsan}
SANITIZER_DIR=$PWD/scripts/sanitizers

# ONE clang ASan+UBSan build for the tests and the fuzzers (fuzzer-no-link coverage in the
# libraries costs the tests little and saves a whole second build). Any report is fatal: ASan
# aborts, UBSan is built with -fno-sanitize-recover, LeakSanitizer fails the process at exit.
# -O1 with line tables (and assertions on) is the usual sanitizer trade: readable stacks, a
# third less compile time than -O2 -g.
SANITIZER_FLAGS="-O1 -gline-tables-only"
# Both sanitizer builds unity-build the tests and link with gold (CMakeLists.txt: KMSP_UNITY_TESTS,
# KMSP_LINKER): a third off the CI run's build time. gold says "Cannot export local symbol
# '__asan_extra_spill_area'" on ASan links; the symbol is ASan's own scratch, not exported on
# purpose, and the binaries are unaffected.
SANITIZER_BUILD_OPTIONS=(-DKMSP_UNITY_TESTS=ON -DKMSP_LINKER=gold)
asan_configure() {
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$ASAN_BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$SANITIZER_FLAGS" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="$SANITIZER_FLAGS" -DKMSP_SANITIZE=ON -DKMSP_BUILD_FUZZ=ON \
    -DKMSP_BUILD_TESTS=ON -DKMSP_BUILD_BENCH=OFF "${SANITIZER_BUILD_OPTIONS[@]}" >/dev/null
}
asan_build() {
  echo "== building the plugin, tests and fuzzers in $ASAN_BUILD_DIR (clang-14, ASan, UBSan)"
  asan_configure
  cmake --build "$ASAN_BUILD_DIR" -j "$JOBS"
}

sanitize() {
  deps
  asan_build
  asan_tests
}
asan_tests() {
  echo "== unit and integration tests under ASan + UBSan + LSan"
  ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  LSAN_OPTIONS=suppressions=$SANITIZER_DIR/lsan.supp:print_suppressions=0 \
    ctest --test-dir "$ASAN_BUILD_DIR" -L 'unit|integration' -j "$JOBS" --output-on-failure \
      --timeout 900
}

# The tests that exercise our threads (caches, key tracking, the servers, the AWS credential
# refresh, the rotator), built alone with ThreadSanitizer and run directly.
TSAN_TARGETS=(dek_cache_test envelope_service_test key_tracking_test server_test
  grpc_service_test aws_credentials_test aws_credentials_outage_test rotator_test)
tsan() {
  deps
  echo "== building ${#TSAN_TARGETS[@]} concurrency tests in $TSAN_BUILD_DIR (clang-14, TSan)"
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$TSAN_BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$SANITIZER_FLAGS" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="$SANITIZER_FLAGS" -DKMSP_TSAN=ON -DKMSP_BUILD_TESTS=ON \
    -DKMSP_BUILD_BENCH=OFF "${SANITIZER_BUILD_OPTIONS[@]}" >/dev/null
  cmake --build "$TSAN_BUILD_DIR" -j "$JOBS" --target "${TSAN_TARGETS[@]}"
  local passed=0 failed=0 t bin
  for t in "${TSAN_TARGETS[@]}"; do
    bin=$(find "$TSAN_BUILD_DIR/tests" -type f -name "$t" -perm -u+x | head -n 1)
    echo "== $t under TSan"
    if TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$SANITIZER_DIR/tsan.supp" \
        "$bin" --gtest_brief=1 > "$TSAN_BUILD_DIR/$t.log" 2>&1; then
      passed=$((passed + 1)); tail -n 1 "$TSAN_BUILD_DIR/$t.log" | sed "s/^/   /"
    else
      failed=$((failed + 1))
      echo "   FAILED: $t; the last lines of $TSAN_BUILD_DIR/$t.log:"; tail -n 60 "$TSAN_BUILD_DIR/$t.log"
    fi
  done
  echo "tsan: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# clang-tidy-14 with the repo's .clang-tidy on every .cc of the project (generated .pb.cc live in
# build/ and are not in git), JOBS files at once. Needs build/compile_commands.json and the
# generated headers, so it runs after build (or configures and generates them itself).
tidy() {
  deps
  # TIDY_DB: a directory holding a compile_commands.json of an already-built tree (test_all's
  # background run); otherwise BUILD_DIR is configured and its protoc outputs generated here.
  local db=${TIDY_DB:-$BUILD_DIR}
  if [ -z "${TIDY_DB:-}" ]; then
    if [ ! -f "$BUILD_DIR/compile_commands.json" ]; then
      cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    # Only the protoc outputs, not a whole build.
    ninja -C "$BUILD_DIR" $(ninja -C "$BUILD_DIR" -t targets all | grep -E '^[a-z][^:]*\.pb\.h:' | cut -d: -f1) >/dev/null
  fi
  local logs="$BUILD_DIR/tidy" files
  rm -rf "$logs" && mkdir -p "$logs"
  # TIDY_SCOPE=product (what test_all uses): every .cc but tests/; default: every .cc.
  if [ "${TIDY_SCOPE:-all}" = product ]; then
    mapfile -t files < <(git ls-files '*.cc' ':!tests/')
  else
    mapfile -t files < <(git ls-files '*.cc')
  fi
  echo "== clang-tidy-14 on ${#files[@]} files ($JOBS at once)"
  printf '%s\n' "${files[@]}" | xargs -P "$JOBS" -I{} sh -c \
    'clang-tidy-14 -p "$1" --quiet --header-filter="^$2/(base|crypto|kms|plugin|tools|cmd|tests|fuzz|bench)/" "$3" > "$4/$(echo "$3" | tr / _).log" 2>&1 || echo "   tidy: $3"' \
    _ "$db" "$PWD" {} "$logs"
  local findings
  findings=$(cat "$logs"/*.log | grep -cE ': (warning|error): ' || true)
  if [ "$findings" -ne 0 ]; then
    cat "$logs"/*.log | grep -E ': (warning|error): ' | sort -u
    echo "tidy: $findings findings (logs in $logs)"; return 1
  fi
  echo "tidy: clean"
}

# A short libFuzzer run of the Decrypt path under ASan and UBSan (clang-14); FUZZ_SECONDS (60).
fuzz() {
  deps
  # The ASan+UBSan build dir of `sanitize` (same flags: the fuzzers share its libraries).
  local dir=${FUZZ_BUILD_DIR:-$ASAN_BUILD_DIR}
  local seconds=${FUZZ_SECONDS:-20}
  local targets=(decrypt_fuzzer aws_response_fuzzer keyring_fuzzer reencrypt_storage_fuzzer
    reencrypt_config_fuzzer reencrypt_etcd_response_fuzzer sigv4_fuzzer pkcs11_blob_fuzzer
    vault_response_fuzzer cloud_response_fuzzer)
  echo "== building ${#targets[@]} fuzzers in $dir (clang-14, libFuzzer, ASan, UBSan)"
  ASAN_BUILD_DIR=$dir asan_configure  # A no-op build once `sanitize` has built everything.
  cmake --build "$dir" -j "$JOBS" --target "${targets[@]}"
  # JOBS targets at a time (each fuzzer is one process on one core), each FUZZ_SECONDS long.
  # xargs waits for exactly its own children: test_all may run clang-tidy in the background
  # meanwhile, which a bare `wait` would also wait for. Each run works on a copy of the committed
  # seeds (the run adds inputs, the repo stays as it is) and writes a crashing input to
  # $dir/crash-<target>-*, never into the source tree.
  local t
  for t in "${targets[@]}"; do
    rm -rf "$dir/corpus-work/$t" "$dir/$t.rc" "$dir/crash-$t-"* && mkdir -p "$dir/corpus-work/$t"
    if [ -d "fuzz/corpus/$t" ]; then cp -r "fuzz/corpus/$t/." "$dir/corpus-work/$t/"; fi
  done
  echo "== fuzzing ${#targets[@]} targets for ${seconds}s each, $JOBS at a time"
  printf '%s\n' "${targets[@]}" | xargs -P "$JOBS" -I{} sh -c \
    '"$1/fuzz/$2" -max_total_time="$3" -print_final_stats=1 -artifact_prefix="$1/crash-$2-" \
       "$1/corpus-work/$2" > "$1/$2.log" 2>&1; echo $? > "$1/$2.rc"' _ "$dir" {} "$seconds" || true
  local passed=0 failed=0
  for t in "${targets[@]}"; do
    if [ "$(cat "$dir/$t.rc" 2>/dev/null)" = 0 ]; then
      passed=$((passed + 1))
      echo "   $t:"
      grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" \
        "$dir/$t.log" | sed "s/^/     /"
    else
      failed=$((failed + 1))
      echo "   FAILED: $t found a crash or leak (input: $(ls "$dir/crash-$t-"* 2>/dev/null | head -n 1));" \
        "the last lines of $dir/$t.log:"
      tail -n 40 "$dir/$t.log"
    fi
  done
  echo "fuzz: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# The serving-path benchmark (bench/README.md): a Release build of kms-plugin, floor_server and
# load_client in BENCH_BUILD_DIR (build-release), then bench/run_bench.py with the extra args.
bench() {
  deps
  local dir=${BENCH_BUILD_DIR:-build-release}
  echo "== building kms-plugin, floor_server, load_client in $dir (Release)"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKMSP_BUILD_TESTS=OFF >/dev/null
  cmake --build "$dir" -j "$JOBS" --target kms-plugin floor_server load_client
  /usr/bin/python3 bench/run_bench.py "$dir" "$@"
}

case "${1:-}" in
  run) run ;;
  test) test_all ;;
  deps) deps ;;
  build) build ;;
  release) release ;;
  fuzz) fuzz ;;
  sanitize) sanitize ;;
  tsan) tsan ;;
  tidy) tidy ;;
  bench) shift; bench "$@" ;;
  *) echo "usage: $0 run|test|deps|build|release|fuzz|sanitize|tsan|tidy|bench" >&2; exit 2 ;;
esac
