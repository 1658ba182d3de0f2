#!/usr/bin/env bash
# The key-rotation runbook's commands (docs/key-rotation.md), run as written on a throwaway PostgreSQL: migrate a
# plaintext oauth_tokens table with awkward rows, then rotate from key A to key B and verify with B alone. Prints no
# secret. Needs `swift build` first, psql, jq and python3. Ends with "ALL OK"; any failure stops it (set -e).
#   usage: bash .ci/runbook.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(swift build --show-bin-path):$PATH"
work=$(mktemp -d); cd "$work"
eval "$(token-vault-test-postgres start)"; export DATABASE_URL
trap 'token-vault-test-postgres stop "$TOKEN_VAULT_TEST_PGDIR"; rm -rf "$work"' EXIT
unset TOKEN_VAULT_KEY TOKEN_VAULT_PREVIOUS_KEYS TOKEN_VAULT_PREVIOUS_KEYS_FILE

# The original service's plaintext table
psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" <<'SQL'
CREATE TABLE oauth_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  client_id varchar(255) NOT NULL, provider varchar(50) NOT NULL,
  access_token text, refresh_token text NOT NULL, token_expiry timestamptz,
  scopes text, metadata jsonb DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (client_id, provider));
INSERT INTO oauth_tokens (client_id, provider, access_token, refresh_token, token_expiry, scopes, metadata) VALUES
 ('acme', 'zoho_crm', '1000.acme-access', '1000.acme-refresh', now() + interval '50 minutes',
  'ZohoCRM.modules.ALL', '{"api_domain": "https://www.zohoapis.eu", "token_type": "Bearer"}'),
 ('acme', 'zoho_calendar', NULL, '1000.acme-cal-refresh', NULL, NULL, NULL),
 ('globex', 'zoho_crm', '1000.globex-access', '1000.globex-refresh', now() - interval '2 hours',
  'ZohoCRM.modules.ALL', '{"api_domain": "https://www.zohoapis.com", "client_id": "EVIL", "scope": "x", "error": "old"}'),
 ('initech', 'zoho_crm', '', '1000.initech-refresh', now() + interval '1 day', '', '{"note": "a\nb \"q\" ü"}'),
 ('client-ü-東京', 'zoho_calendar', '1000.unicode-access', '1000.unicode-refresh',
  '2030-01-31 12:00:00.123456+00', 'ZohoCalendar.calendar.ALL', '[1, 2]');
SQL

# Migration
(umask 077; token-vault keygen > token-vault-A.key)
export TOKEN_VAULT_KEY_FILE=$PWD/token-vault-A.key
psql -X -v ON_ERROR_STOP=1 "$DATABASE_URL" -c 'ALTER TABLE oauth_tokens RENAME TO oauth_tokens_plaintext;'
token-vault migrate
PGTZ=UTC psql -X -At -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "
  SELECT (CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata ELSE '{}'::jsonb END
          - ARRAY['client_id', 'provider', 'access_token', 'refresh_token',
                  'expires_in', 'expires_in_sec', 'expires_at', 'scope', 'error'])
      || jsonb_strip_nulls(jsonb_build_object(
           'client_id', client_id, 'provider', provider,
           'access_token', nullif(access_token, ''), 'refresh_token', refresh_token,
           'expires_at', token_expiry, 'scope', scopes))
  FROM oauth_tokens_plaintext ORDER BY client_id, provider" \
| token-vault import
token-vault verify
psql -X -At -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "
  SELECT (SELECT count(*) FROM oauth_tokens_plaintext) AS plaintext_rows,
         (SELECT count(*) FROM oauth_tokens) AS sealed_rows,
         (SELECT count(*) FROM oauth_tokens_plaintext p WHERE NOT EXISTS (
            SELECT 1 FROM oauth_tokens t WHERE t.client_id = p.client_id AND t.provider = p.provider)) AS missing"
psql -X -At -F $'\t' -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "
  SELECT client_id, provider, access_token FROM oauth_tokens_plaintext
  WHERE access_token <> '' AND token_expiry > now() + interval '10 minutes'" |
while IFS=$'\t' read -r client provider plaintext; do
  if [ "$(token-vault token --client "$client" --provider "$provider" </dev/null)" = "$plaintext" ]
  then echo "match    $client $provider"; else echo "MISMATCH $client $provider"; fi
done
[ "$(token-vault token --client acme --provider zoho_crm)" = 1000.acme-access ]
token-vault token --client acme --provider zoho_crm --json | jq -c '{client_id, provider, expires_in, scopes, metadata}'
token-vault list
psql -X -v ON_ERROR_STOP=1 "$DATABASE_URL" -c 'DROP TABLE oauth_tokens_plaintext;'

# Rotation A -> B
OLD_KEY_FILE=$PWD/token-vault-A.key
NEW_KEY_FILE=$PWD/token-vault-B.key
(umask 077; token-vault keygen > "$NEW_KEY_FILE")
# step A as a service runs it, then a step-B instance writes and a step-A instance reads that row
TOKEN_VAULT_KEY_FILE="$OLD_KEY_FILE" TOKEN_VAULT_PREVIOUS_KEYS_FILE="$NEW_KEY_FILE" token-vault verify
echo '{"access_token": "1000.new-access", "refresh_token": "1000.new-refresh", "expires_in": 3600}' |
  TOKEN_VAULT_KEY_FILE="$NEW_KEY_FILE" TOKEN_VAULT_PREVIOUS_KEYS_FILE="$OLD_KEY_FILE" \
  token-vault put --client hooli --provider zoho_crm
TOKEN_VAULT_KEY_FILE="$OLD_KEY_FILE" TOKEN_VAULT_PREVIOUS_KEYS_FILE="$NEW_KEY_FILE" \
  token-vault token --client hooli --provider zoho_crm >/dev/null && echo "step-A instance opens a new-key row"
# step C (set -e: each rotate-key must exit 0, i.e. leave every row under the new key)
export TOKEN_VAULT_KEY_FILE="$NEW_KEY_FILE"
export TOKEN_VAULT_PREVIOUS_KEYS_FILE="$OLD_KEY_FILE"
token-vault rotate-key --dry-run
TOKEN_VAULT_LOG_LEVEL=notice token-vault rotate-key
token-vault rotate-key                               # again: re-seals 0 rows
unset TOKEN_VAULT_PREVIOUS_KEYS_FILE
# step D and the retirement check
env -u TOKEN_VAULT_PREVIOUS_KEYS -u TOKEN_VAULT_PREVIOUS_KEYS_FILE TOKEN_VAULT_KEY_FILE="$NEW_KEY_FILE" token-vault verify
env -u TOKEN_VAULT_PREVIOUS_KEYS -u TOKEN_VAULT_PREVIOUS_KEYS_FILE TOKEN_VAULT_KEY_FILE="$NEW_KEY_FILE" token-vault verify --json > verify.json
echo "verify exit: $?"
NEW_ID=$(python3 -c 'import base64,hashlib,sys;k=base64.b64decode(sys.stdin.read().strip(),validate=True);assert len(k)==32;print(hashlib.blake2b(b"token-vault/key-id/v1",digest_size=16,key=k).hexdigest())' < "$NEW_KEY_FILE")
jq -e --arg id "$NEW_ID" \
   --argjson n "$(psql -X -At -v ON_ERROR_STOP=1 "$DATABASE_URL" -c 'SELECT count(*) FROM oauth_tokens')" \
   '.ok and (.rows_by_key_id | keys) == [$id] and .rows == $n' verify.json
[ "$(token-vault token --client acme --provider zoho_crm)" = 1000.acme-access ] && echo "token unchanged"
TOKEN_VAULT_KEY_FILE="$OLD_KEY_FILE" token-vault verify >/dev/null 2>&1 \
  || echo "the old key alone no longer opens the table"
echo ALL OK
