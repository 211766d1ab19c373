#!/usr/bin/env bash
# Builds the cargo-fuzz targets of fuzz/ (nightly) and runs each for a bounded time, starting
# from a copy of its seed corpus (fuzz/corpus/<target>/, tracked; what a run adds to the corpus
# is thrown away). Fails on any crash, timeout or memory blow-up, and when nightly or cargo-fuzz
# is missing: cargo-fuzz is installed (pinned) if absent; nightly cannot be installed here, so
# its absence is a failure, never a skip. A failing input is kept in fuzz/artifacts/<target>/,
# and the command that replays it is printed.
#
# Time, measured on the 2-core machine: FUZZ_SECONDS per target (default 15) × 10 targets =
# 150 s of fuzzing, plus the build: a few seconds when nothing changed, 70–90 s after a change
# to tusgate (the whole script then took 3 min 47 s), and 10 CPU-minutes from cold (15 min
# wall while other builds shared the machine). The build goes to FUZZ_TARGET_DIR (default
# ~/.cache/tusgate-fuzz/target), outside the checkout, because CI runs each time in a fresh
# clone and would otherwise always build cold.
#
# Built without a sanitizer (`-s none`): tusgate forbids unsafe code, so AddressSanitizer would
# watch only dependencies, and would cost executions. Debug assertions and overflow checks are
# on (cargo-fuzz's default).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

seconds=${FUZZ_SECONDS:-15}
target_dir=${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tusgate-fuzz/target}
cargo_fuzz_version=0.13.2
build_flags=(-s none --codegen-units 16 --target-dir "$target_dir")

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz $cargo_fuzz_version"
    cargo install --locked --version "$cargo_fuzz_version" cargo-fuzz
fi

started=$SECONDS
cargo +nightly fuzz build "${build_flags[@]}"
echo "fuzz: built in $((SECONDS - started)) s"

mapfile -t targets < <(cargo +nightly fuzz list)
if ((${#targets[@]} == 0)); then
    echo "fuzz: no targets in fuzz/" >&2
    exit 1
fi
bin="$target_dir/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    mkdir -p "$corpus" "$work/artifacts/$target" "$work/tmp"
    cp fuzz/corpus/"$target"/* "$corpus"/
    log="$work/$target.log"
    # The request target keeps its stores under TMPDIR; removed with $work.
    if TMPDIR="$work/tmp" "$bin/$target" "$corpus" \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/artifacts/$target/" -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz: $target ok, ${runs:-?} executions in ${seconds} s"
    else
        failed+=("$target")
        echo "fuzz: $target FAILED" >&2
        # The panic message, then libFuzzer's summary (the backtrace between is in neither).
        grep -m1 -A2 'panicked at' "$log" >&2 || true
        grep -v -e '^#' -e '^ *[0-9]*: ' -e '^ *at ' "$log" | tail -15 >&2
        mkdir -p fuzz/artifacts/"$target"
        cp -r "$work/artifacts/$target"/. fuzz/artifacts/"$target"/
        echo "fuzz: failing input kept in fuzz/artifacts/$target/; replay it with" >&2
        for input in fuzz/artifacts/"$target"/*; do
            echo "  $bin/$target $input" >&2
        done
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed in $((SECONDS - started)) s"
