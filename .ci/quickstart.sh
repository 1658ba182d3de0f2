#!/usr/bin/env bash
# token-vault end to end on a fresh Debian/Ubuntu machine with the Swift toolchain:
# installs the system packages, builds, starts a throwaway PostgreSQL (unless DATABASE_URL is set), and walks
# through keygen -> migrate -> put -> token -> list -> verify, showing what the CLI returns beside what the
# database holds. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."

bold() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# Echo a command (with the connection string shown as $DATABASE_URL: it may hold a password), then run it.
run() {
    local shown="" arg
    for arg in "$@"; do
        if [ -n "${DATABASE_URL:-}" ] && [ "$arg" = "$DATABASE_URL" ]; then
            shown+='"$DATABASE_URL" '
        elif [[ "$arg" =~ ^[A-Za-z0-9_./=:,-]+$ ]]; then
            shown+="$arg "
        else
            shown+="'${arg//\'/\'\\\'\'}' "
        fi
    done
    printf '\033[2m$ %s\033[0m\n' "$shown"
    "$@"
}
# The demo uses its own key; a key already in the environment must not get in the way.
unset TOKEN_VAULT_KEY TOKEN_VAULT_KEY_FILE TOKEN_VAULT_PREVIOUS_KEYS TOKEN_VAULT_PREVIOUS_KEYS_FILE

if command -v dpkg >/dev/null 2>&1 && dpkg -s libsodium-dev libpq-dev postgresql >/dev/null 2>&1; then
    bold "System packages already installed: libsodium-dev libpq-dev postgresql"
elif command -v apt-get >/dev/null 2>&1; then
    bold "Installing system packages: libsodium-dev libpq-dev postgresql"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    run $SUDO apt-get update
    run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y libsodium-dev libpq-dev postgresql
else
    bold "No apt-get here: libsodium, libpq and PostgreSQL must already be installed (macOS: brew install libsodium libpq postgresql)"
fi

bold "Building"
run swift build
BIN="$(swift build --show-bin-path)"
export PATH="$BIN:$PATH"

WORK="$(mktemp -d)"
CLIENT="demo-client"
STARTED_PGDIR=""   # only a cluster this script started is stopped
SCRATCH_SCHEMA=""  # only a schema this script created is dropped
cleanup() {
    status=$?
    if [ -n "$STARTED_PGDIR" ]; then
        bold "Stopping the throwaway PostgreSQL"
        token-vault-test-postgres stop "$STARTED_PGDIR" || true
    elif [ -n "$SCRATCH_SCHEMA" ]; then
        bold "Dropping the scratch schema $SCRATCH_SCHEMA"
        PGOPTIONS="" psql "$DATABASE_URL" -X -q -c "DROP SCHEMA IF EXISTS $SCRATCH_SCHEMA CASCADE" || true
    fi
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT

if [ -z "${DATABASE_URL:-}" ]; then
    bold "Starting a throwaway PostgreSQL (no DATABASE_URL set)"
    eval "$(token-vault-test-postgres start)"
    STARTED_PGDIR="$TOKEN_VAULT_TEST_PGDIR"
    export DATABASE_URL
    echo "DATABASE_URL=$DATABASE_URL"
else
    # Your database: everything happens in a scratch schema that is dropped at the end; nothing else is touched.
    SCRATCH_SCHEMA="token_vault_quickstart_$$"
    bold "Using DATABASE_URL from the environment, in a scratch schema ($SCRATCH_SCHEMA) dropped at the end"
    psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $SCRATCH_SCHEMA"
    # libpq (the vault and psql alike) puts the schema first in search_path for every connection.
    export PGOPTIONS="-c search_path=$SCRATCH_SCHEMA"
fi

bold "1. keygen: a new key, written straight into a file only we can read"
(umask 077 && token-vault keygen > "$WORK/token-vault.key")
export TOKEN_VAULT_KEY_FILE="$WORK/token-vault.key"
echo "key written to \$TOKEN_VAULT_KEY_FILE ($(wc -c < "$WORK/token-vault.key") bytes of base64; not shown)"

bold "2. migrate: create the schema"
run token-vault migrate

bold "3. put: store a token response as Zoho returns it (read from stdin, never from arguments)"
RESPONSE='{"access_token":"1000.demo-access-token.abcdef0123456789","refresh_token":"1000.demo-refresh-token.9876543210fedcba","expires_in":3600,"api_domain":"https://www.zohoapis.eu","token_type":"Bearer","scope":"ZohoCRM.modules.ALL"}'
echo "$RESPONSE"
printf '%s' "$RESPONSE" | run token-vault put --client "$CLIENT" --provider zoho_crm

bold "4. token: what a service gets back"
run token-vault token --client "$CLIENT" --provider zoho_crm
run token-vault token --client "$CLIENT" --provider zoho_crm --json

bold "5. ...and what the database actually holds: ciphertext and nonces only"
SHOW_ROW="SELECT client_id, provider, key_id, encode(access_token_ciphertext, 'hex') AS access_token_ciphertext, encode(access_token_nonce, 'hex') AS access_token_nonce, encode(refresh_token_ciphertext, 'hex') AS refresh_token_ciphertext, token_expiry, scopes, metadata, version FROM oauth_tokens WHERE client_id = '$CLIENT'"
run psql "$DATABASE_URL" -X -P pager=off -x -c "$SHOW_ROW"
if psql "$DATABASE_URL" -X -At -c "SELECT row_to_json(t)::text FROM oauth_tokens t" | grep -q "demo-access-token"; then
    echo "PLAINTEXT FOUND IN THE DATABASE" >&2
    exit 1
fi
echo "(searched every row for the plaintext token: not found)"

bold "6. list: rows without secrets"
run token-vault list

bold "7. verify: open every row; exit status 0 means every secret opens"
run token-vault verify

bold "8. a tampered row is caught: flip one byte in the database, verify again"
TAMPER="UPDATE oauth_tokens SET access_token_ciphertext = set_byte(access_token_ciphertext, 10, get_byte(access_token_ciphertext, 10) # 1) WHERE client_id = '$CLIENT'"
run psql "$DATABASE_URL" -X -q -c "$TAMPER"
if token-vault verify; then
    echo "verify should have failed" >&2
    exit 1
else
    echo "(verify exited $? as expected)"
fi

bold "Done. Everything created here is removed on exit."
