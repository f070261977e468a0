#!/usr/bin/env bash
# kms-plugin developer entry point for a fresh Debian 12 machine.
#
#   scripts/dev.sh run    install what is missing, build, start the plugin on a local keyring
#   scripts/dev.sh test   install what is missing, build, run every test (what CI runs)
#   scripts/dev.sh deps   only install what is missing
#   scripts/dev.sh build  deps + build
#   scripts/dev.sh fuzz   a short libFuzzer + ASan/UBSan run of every parser of untrusted bytes
#                         (FUZZ_SECONDS each, default 20)
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
  libgtest-dev libgmock-dev libbenchmark-dev clang-14 libclang-rt-14-dev
  softhsm2 etcd-server
  python3 python3-boto3 python3-botocore python3-hvac python3-grpcio python3-protobuf
  python3-matplotlib python3-nacl python3-cryptography
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
    --local-keyring "$home/keyring.json" --health-addr 127.0.0.1:8787
}

test_all() {
  build
  echo "== running every test"
  ctest --test-dir "$BUILD_DIR" -j "$JOBS" --output-on-failure --timeout 900
  fuzz
}

# A short libFuzzer run of the Decrypt path under ASan and UBSan (clang-14); FUZZ_SECONDS (60).
fuzz() {
  deps
  local dir=${FUZZ_BUILD_DIR:-build-fuzz}
  local seconds=${FUZZ_SECONDS:-20}
  local targets=(decrypt_fuzzer aws_response_fuzzer keyring_fuzzer reencrypt_storage_fuzzer
    reencrypt_config_fuzzer reencrypt_etcd_response_fuzzer sigv4_fuzzer)
  echo "== building ${#targets[@]} fuzzers in $dir (clang-14, libFuzzer, ASan, UBSan)"
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DKMSP_SANITIZE=ON -DKMSP_BUILD_FUZZ=ON -DKMSP_BUILD_TESTS=OFF -DKMSP_BUILD_BENCH=OFF >/dev/null
  cmake --build "$dir" -j "$JOBS" --target "${targets[@]}"
  local passed=0 failed=0
  for t in "${targets[@]}"; do
    # Work on a copy of the committed seeds: the run adds inputs, the repo stays as it is.
    local work="$dir/corpus-work/$t"
    rm -rf "$work" && mkdir -p "$work"
    if [ -d "fuzz/corpus/$t" ]; then cp -r "fuzz/corpus/$t/." "$work/"; fi
    echo "== fuzzing $t for ${seconds}s"
    if "$dir/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 "$work" \
        > "$dir/$t.log" 2>&1; then
      passed=$((passed + 1))
      grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" \
        "$dir/$t.log" | sed "s/^/   /"
    else
      failed=$((failed + 1))
      echo "   FAILED: $t found a crash or leak; the last lines of $dir/$t.log:"
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
  fuzz) fuzz ;;
  bench) shift; bench "$@" ;;
  *) echo "usage: $0 run|test|deps|build|fuzz|bench" >&2; exit 2 ;;
esac
