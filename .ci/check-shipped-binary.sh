#!/usr/bin/env bash
# The token-vault binary that operators ship links no test, fuzz or benchmark code: no local OAuth endpoint, no
# throwaway PostgreSQL, no raw baselines, no fuzz target. Reads the symbols of the built binary (debug by default).
#   usage: bash .ci/check-shipped-binary.sh [path/to/token-vault]
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:-$(swift build --show-bin-path)/token-vault}"
[ -x "$binary" ] || { echo "check-shipped-binary: $binary is not built" >&2; exit 1; }
found=$(nm "$binary" | swift demangle --simplified \
    | grep -E 'TokenVaultTesting|FakeTokenEndpoint|TemporaryPostgres|SharedDatabase|AdminSQL|RawConnection|RawCrypto|CPUBurn|BenchRunner|token_vault_bench|TokenVaultFuzzSupport|token_vault_fuzz|LLVMFuzzer' \
    | head -5 || true)
if [ -n "$found" ]; then
    echo "check-shipped-binary: $binary links test or bench code, e.g.:" >&2
    echo "$found" >&2
    exit 1
fi
echo "shipped binary: $binary links no test, fuzz or bench code"
