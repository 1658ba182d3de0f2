#!/usr/bin/env bash
# Fuzzes the parsers and the row opener with libFuzzer (Tests/Fuzz/README.md): builds each target with
# -sanitize=fuzzer,address into .build-fuzz (never the ordinary .build), then runs each for SECONDS, starting from
# the committed seeds (Tests/Fuzz/Corpus/TARGET) and the corpus earlier runs grew (.build-fuzz/corpus/TARGET).
# Prints per target the executions run and the crashes found; exits 1 on a crash, naming the crashing input.
#   usage: bash .ci/fuzz.sh SECONDS [token-response|import-line|open-row ...]     (default: all three)
#   FUZZ_SEED=N fixes libFuzzer's seed (CI sets it, so that a landing is not decided by a random walk; a crash
#   it finds is then found again on every run until fixed). Unset: a random seed, for long runs by hand.
#   replay an input: .build-fuzz/release/token-vault-fuzz-TARGET INPUT   (or the debug build's binary, no sanitizer)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: bash .ci/fuzz.sh SECONDS [TARGET...]}"
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(token-response import-line open-row)
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz: SECONDS must be a whole number, not '$seconds'" >&2; exit 2; }

scratch=.build-fuzz
mkdir -p "$scratch"
flags=(-c release --scratch-path "$scratch"
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -D -Xswiftc FUZZING)
for target in "${targets[@]}"; do
    [ -d "Tests/Fuzz/Corpus/$target" ] || { echo "fuzz: no target '$target' (see Tests/Fuzz)" >&2; exit 2; }
    swift build "${flags[@]}" --product "token-vault-fuzz-$target" >"$scratch/build.log" 2>&1 \
        || { cat "$scratch/build.log" >&2; echo "fuzz: building token-vault-fuzz-$target failed" >&2; exit 2; }
done
bin="$(swift build "${flags[@]}" --show-bin-path)"

status=0
summary=()
for target in "${targets[@]}"; do
    corpus="$scratch/corpus/$target"
    artifacts="$scratch/crashes/$target"
    log="$scratch/logs/$target.log"
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    # New inputs go to the first directory (the build's), never into the committed seeds.
    # Leak detection stays off: the Swift runtime's caches live until exit, and it cannot tell them from leaks.
    # Swift's own backtracer stays off too: it reads the crashed stack in a way AddressSanitizer reports as a
    # second error; libFuzzer prints the stack and writes the input.
    dictionary=()
    [ "$target" = open-row ] || dictionary=(-dict=Tests/Fuzz/json.dict)
    seed=()
    [ -z "${FUZZ_SEED:-}" ] || seed=(-seed="$FUZZ_SEED")
    result=0
    SWIFT_BACKTRACE=enable=no "$bin/token-vault-fuzz-$target" "$corpus" "Tests/Fuzz/Corpus/$target" "${dictionary[@]}" "${seed[@]}" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -detect_leaks=0 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || result=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [ "$result" != 0 ] || [ -n "$crash" ]; then
        status=1
        summary+=("$target: ${runs:-?} executions, 1 crash: ${crash:-none written; see $log} (log: $log)")
        grep -m 3 -E "Fatal error|fuzz property|ERROR: (AddressSanitizer|libFuzzer)" "$log" | sed 's/^/    /' >&2 || true
    else
        summary+=("$target: $runs executions in ${seconds} s, 0 crashes (corpus: $(ls "$corpus" | wc -l) inputs)")
    fi
done
printf '%s\n' "${summary[@]}"
exit "$status"
