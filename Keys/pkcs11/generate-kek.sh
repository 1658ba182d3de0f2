#!/usr/bin/env bash
# Generates a key-encrypting key inside the token: AES-256, sensitive, never extractable. It wraps token-vault's data
# keys (wrap-key.sh) and unwraps them at start-up (unwrap-key.sh); it never leaves the token.
#
# Usage: generate-kek.sh ID [LABEL]     e.g. generate-kek.sh 01 token-vault-kek-2026
# Settings: see pkcs11-common.sh (PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_PIN_FILE).
. "$(dirname "$0")/pkcs11-common.sh"
[ $# -ge 1 ] && [ $# -le 2 ] || fail "usage: $script ID [LABEL]"
check_id "$1"
if [ -n "$(key_listing "$1")" ]; then
    fail "the token already holds a secret key with id $1; choose another id"
fi
p11 --keygen --key-type AES:32 --id "$1" --label "${2:-token-vault-kek-$1}" --sensitive --usage-decrypt >/dev/null
key_listing "$1" | grep -q 'never extractable' ||
    fail "the new key $1 is not marked never extractable; do not use it"
echo "$script: generated AES-256 key-encrypting key $1 (sensitive, never extractable) on token $PKCS11_TOKEN_LABEL" >&2
