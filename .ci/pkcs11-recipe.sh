#!/usr/bin/env bash
# The PKCS#11 recipe of Keys/README.md ("PKCS#11 token"), its shell blocks run as written on a throwaway PostgreSQL
# and a throwaway SoftHSM2 token. Three changes, so that it runs unattended and touches nothing of the machine's:
# /etc/token-vault becomes a temporary directory, SOFTHSM2_CONF points at a temporary token directory, and the two
# PIN prompts are answered on the command line. Needs `swift build` first, softhsm2 and opensc. Ends with "ALL OK".
#   usage: bash .ci/pkcs11-recipe.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(swift build --show-bin-path):$PATH"
work=$(mktemp -d)
eval "$(token-vault-test-postgres start)"; export DATABASE_URL
trap 'token-vault-test-postgres stop "$TOKEN_VAULT_TEST_PGDIR"; rm -rf "$work"' EXIT
unset TOKEN_VAULT_KEY TOKEN_VAULT_KEY_FILE TOKEN_VAULT_PREVIOUS_KEYS TOKEN_VAULT_PREVIOUS_KEYS_FILE

mkdir -p "$work/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$work" > "$work/softhsm2.conf"
export SOFTHSM2_CONF=$work/softhsm2.conf

awk '/^#### PKCS#11 token/,/^### The library/' Keys/README.md | awk '/^```sh/ { on = 1; next } /^```/ { on = 0 } on' |
    sed -e "s|/etc/token-vault|$work/etc|g" \
        -e 's|^apt-get install .*|: packages installed by .ci/run|' \
        -e 's|^softhsm2-util --init-token --free --label token-vault$|& --so-pin 31415926 --pin 271828|' \
        -e "s|read -rsp 'user PIN: ' pin;|pin=271828;|" > "$work/recipe.sh"
# The substitutions must all have applied: the recipe as written, but unattended.
grep -q -- '--so-pin 31415926 --pin 271828' "$work/recipe.sh"
grep -q 'pin=271828;' "$work/recipe.sh"
if grep -q '/etc/token-vault' "$work/recipe.sh"; then exit 1; fi

( set -x; . "$work/recipe.sh" ) > "$work/out.txt" 2>&1 || { cat "$work/out.txt"; exit 1; }
cat "$work/out.txt" | grep -v '^+'

# What the recipe promises: the KEK was never extractable, only wrapped keys were written, the new key is current
# and the old one can be retired.
grep -q 'never extractable' "$work/out.txt"
grep -q '^current  .* from TOKEN_VAULT_KEY_COMMAND$' "$work/out.txt"
grep -q '^previous .* from TOKEN_VAULT_PREVIOUS_KEYS_COMMAND, key 1  (can be retired)$' "$work/out.txt"
for file in "$work"/etc/*; do
    case "$file" in
    */pin) ;;
    *) grep -q '^format: token-vault-pkcs11-wrap-v1$' "$file" ;;
    esac
done
echo "ALL OK"
