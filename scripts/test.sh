#!/usr/bin/env bash
# The whole test suite: style checks (cargo fmt, clippy with warnings as errors), Rust unit
# and wire-level tests, a short chaos run (the server killed while messages flow), then the
# real-client acceptance suite (Telethon 1.44.0, pinned, in its own virtualenv which this
# script creates).
# Usage: scripts/test.sh            (everything)
#        scripts/test.sh -k catchup (extra arguments go to pytest)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== style (rustfmt, clippy)"
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "== building"
cargo build --locked --workspace --all-targets

echo "== rust tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --workspace --no-fail-fast
else
    cargo test --locked --workspace --no-fail-fast
fi

echo "== chaos (SIGKILL at random while messages flow; 0 lost, 0 duplicated)"
target/debug/herald-bench chaos --herald target/debug/herald --seconds 20 --kill-min 4 --kill-max 7 --pairs 3

echo "== acceptance tests (Telethon)"
VENV=.venv-acceptance
REQ=tests/acceptance/requirements.txt
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/.requirements"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
    cp "$REQ" "$VENV/.requirements"
fi
HERALD_BIN="$PWD/target/debug/herald" "$VENV/bin/python" -m pytest tests/acceptance -q "$@"
