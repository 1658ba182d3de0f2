#!/usr/bin/env bash
# token-vault end to end on a fresh Debian/Ubuntu machine with the Swift toolchain:
# installs the system packages, builds, starts a throwaway PostgreSQL (unless DATABASE_URL is set), and walks
# through keygen -> migrate -> put -> token -> list -> verify, showing what the CLI returns beside what the
# database holds. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."

bold() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

bold "Installing system packages: libsodium-dev libpq-dev postgresql"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
run $SUDO apt-get update
run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y libsodium-dev libpq-dev postgresql

bold "Building"
run swift build
BIN="$(swift build --show-bin-path)"
export PATH="$BIN:$PATH"

WORK="$(mktemp -d)"
CLIENT="demo-client"
cleanup() {
    status=$?
    if [ -n "${TOKEN_VAULT_TEST_PGDIR:-}" ]; then
        bold "Stopping the throwaway PostgreSQL"
        token-vault-test-postgres stop "$TOKEN_VAULT_TEST_PGDIR" || true
    elif [ -n "${DATABASE_URL:-}" ] && [ -f "$WORK/token-vault.key" ]; then
        token-vault delete --client "$CLIENT" --provider zoho_crm >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT

if [ -z "${DATABASE_URL:-}" ]; then
    bold "Starting a throwaway PostgreSQL (no DATABASE_URL set)"
    eval "$(token-vault-test-postgres start)"
    export DATABASE_URL TOKEN_VAULT_TEST_PGDIR
    echo "DATABASE_URL=$DATABASE_URL"
else
    CLIENT="token-vault-demo-$$"
    bold "Using DATABASE_URL from the environment; the demo row ($CLIENT) is deleted at the end"
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
run psql "$DATABASE_URL" -X -P pager=off -x -c "SELECT client_id, provider, key_id,
    encode(access_token_ciphertext, 'hex') AS access_token_ciphertext,
    encode(access_token_nonce, 'hex') AS access_token_nonce,
    encode(refresh_token_ciphertext, 'hex') AS refresh_token_ciphertext,
    token_expiry, scopes, metadata, version
    FROM oauth_tokens WHERE client_id = '$CLIENT'"
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
run psql "$DATABASE_URL" -X -q -c "UPDATE oauth_tokens SET access_token_ciphertext =
    set_byte(access_token_ciphertext, 10, get_byte(access_token_ciphertext, 10) # 1) WHERE client_id = '$CLIENT'"
if token-vault verify; then
    echo "verify should have failed" >&2
    exit 1
else
    echo "(verify exited $? as expected)"
fi

bold "Done. Everything created here is removed on exit."
