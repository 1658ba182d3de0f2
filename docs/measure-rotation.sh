#!/usr/bin/env bash
# Measures `token-vault rotate-key` on N rows against one UPDATE rewriting the same columns of the same rows
# with random bytes, in the same database, and reports rows/s and the peak memory of the rotate-key process.
#   usage: DATABASE_URL=… [BATCH=2000] bash docs/measure-rotation.sh [ROWS…]      (default: 100000 1000000)
# Needs a release build (swift build -c release) and psql. Uses a scratch schema that it drops at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$(swift build -c release --show-bin-path)"
TV="$BIN/token-vault"
: "${DATABASE_URL:?set DATABASE_URL (or start one: eval \"\$(.build/release/token-vault-test-postgres start)\")}"
SCHEMA="token_vault_rotation_$$"
SQL() { psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
cleanup() { SQL -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true; }
trap cleanup EXIT
SQL -c "CREATE SCHEMA $SCHEMA"
# Point the vault at the scratch schema through libpq's options keyword.
export PGOPTIONS="-c search_path=$SCHEMA"
OLD="$("$TV" keygen)"
NEW="$("$TV" keygen)"
TOKEN_VAULT_KEY="$OLD" "$TV" migrate >/dev/null
for ROWS in "${@:-100000 1000000}"; do
  for N in $ROWS; do
    SQL -c "TRUNCATE oauth_tokens"
    python3 - "$N" <<'PY' | TOKEN_VAULT_KEY="$OLD" "$TV" import --batch-size 5000 >/dev/null
import json, sys
n = int(sys.argv[1])
for i in range(n):
    print(json.dumps({"client_id": "client-%08d" % i, "provider": "zoho_crm",
                      "access_token": "1000.%032x.%032x" % (i, i), "refresh_token": "1000.%032x.%032x" % (i + 1, i),
                      "expires_in": 3600, "api_domain": "https://www.zohoapis.eu"}))
PY
    SQL -c "VACUUM ANALYZE oauth_tokens"
    START=$(date +%s.%N)
    /usr/bin/time -f "%M" -o /tmp/tv-rotate-rss env TOKEN_VAULT_KEY="$NEW" TOKEN_VAULT_PREVIOUS_KEYS="$OLD" \
      "$TV" rotate-key --batch-size "${BATCH:-2000}" >/dev/null
    END=$(date +%s.%N)
    VAULT=$(python3 -c "print(round($END - $START, 2))")
    RSS_MB=$(( $(cat /tmp/tv-rotate-rss) / 1024 ))
    SQL -c "VACUUM ANALYZE oauth_tokens"
    START=$(date +%s.%N)
    SQL -c "UPDATE oauth_tokens SET
      access_token_ciphertext = substring(decode(repeat(md5(random()::text), 7), 'hex') from 1 for 88),
      access_token_nonce = substring(decode(repeat(md5(random()::text), 2), 'hex') from 1 for 24),
      refresh_token_ciphertext = substring(decode(repeat(md5(random()::text), 7), 'hex') from 1 for 88),
      refresh_token_nonce = substring(decode(repeat(md5(random()::text), 2), 'hex') from 1 for 24),
      version = version + 1"
    END=$(date +%s.%N)
    BASE=$(python3 -c "print(round($END - $START, 2))")
    python3 -c "
n, v, b, rss = $N, $VAULT, $BASE, $RSS_MB
print(f'rows={n} rotate-key={v}s ({n / v:,.0f} rows/s, peak RSS {rss} MiB)  single UPDATE={b}s  rotate/UPDATE time={v / b:.2f}x')"
  done
done
