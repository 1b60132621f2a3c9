#!/usr/bin/env bash
# Runs each fuzz target (or the ones named) for SECONDS (default 60) with libFuzzer, from
# the seed corpus in fuzz/seeds plus what earlier runs found (fuzz/corpus, not committed).
# Crashes land in fuzz/artifacts/<target>/; turn each into a regression test.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets it use a stable rustc.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(transport handshake session envelope tl_request)
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none
failed=0
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t (${SECONDS_EACH}s)"
    set +e
    cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=1 -max_len=65536 -print_final_stats=1 >"/tmp/herald-fuzz-$t.log" 2>&1
    status=$?
    set -e
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done|SUMMARY)|panicked" "/tmp/herald-fuzz-$t.log" || true
    if [ $status -ne 0 ]; then
        echo "!! $t found a crash (exit $status): see fuzz/artifacts/$t and /tmp/herald-fuzz-$t.log"
        failed=1
    fi
done
exit $failed
