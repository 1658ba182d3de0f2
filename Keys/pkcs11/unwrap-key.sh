#!/usr/bin/env bash
# Unwraps token-vault data keys wrapped by wrap-key.sh and prints them, one per line, in the key file's format: the
# key command of token-vault (no shell needed).
#
#   TOKEN_VAULT_KEY_COMMAND='/opt/token-vault/Keys/pkcs11/unwrap-key.sh /etc/token-vault/key.wrapped'
#   TOKEN_VAULT_PREVIOUS_KEYS_COMMAND='/opt/token-vault/Keys/pkcs11/unwrap-key.sh /etc/token-vault/old.wrapped'
#
# Prints nothing, and exits 1 with the reason on stderr, unless every file unwraps and matches its check value.
# Settings: see pkcs11-common.sh (PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_PIN_FILE).
. "$(dirname "$0")/pkcs11-common.sh"
[ $# -ge 1 ] || fail "usage: $script WRAPPED_KEY_FILE..."
keys=""
for file in "$@"; do
    [ -r "$file" ] || fail "cannot read the wrapped key file $file"
    field() { sed -n "s/^$1: //p" "$file" | head -n 1; }
    [ "$(field format)" = token-vault-pkcs11-wrap-v1 ] || fail "$file is not a wrapped key written by wrap-key.sh"
    kek=$(field kek-id)
    iv=$(field iv)
    ciphertext=$(field ciphertext)
    check=$(field check)
    check_id "$kek"
    [ "$(field mechanism)" = AES-CBC-PAD ] || fail "$file: unknown mechanism"
    [[ $iv =~ ^[0-9a-f]{32}$ ]] || fail "$file: the iv is not 32 hex digits: the file was altered"
    [[ $check =~ ^[0-9a-f]{64}$ ]] || fail "$file: the check value is not 64 hex digits: the file was altered"
    [[ $ciphertext =~ ^[A-Za-z0-9+/]+=*$ ]] || fail "$file: the ciphertext is not base64: the file was altered"
    # SoftHSM2's file store can miss its token while another process writes it (concurrent start-ups): try again
    # then, and only then (never after a refused PIN, which a real token counts towards locking).
    for attempt in 1 2 3 4 5 6; do
        if key=$(printf '%s' "$ciphertext" | base64 -d |
            p11 --decrypt --mechanism AES-CBC-PAD --iv "$iv" --id "$kek" --input-file /dev/stdin --output-file /dev/stdout)
        then
            break
        fi
        if [ "$attempt" -lt 6 ] && grep -q '^No slot with token named' "$p11_errors"; then
            sleep 0.$((attempt * 2))
            continue
        fi
        fail "$file: the token could not decrypt it with key $kek (see pkcs11-tool's message above): a wrong PIN," \
            "a missing token or key, or an altered file"
    done
    [ "$(printf '%s' "$key" | sha256sum | cut -c 1-64)" = "$check" ] ||
        fail "$file: the unwrapped key does not match its check value: the file was altered or wrapped under" \
            "another key"
    keys+="$key"$'\n'
done
printf '%s' "$keys"
