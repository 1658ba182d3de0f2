#!/usr/bin/env bash
# Wraps a token-vault data key under a key-encrypting key in the token. Reads the key in the key file's format
# (base64 of 32 bytes, one line) on stdin, as `token-vault keygen -- wrap-key.sh ID` hands it over, and prints the
# wrapped key (a short text file, not secret without the token) on stdout:
#
#   token-vault keygen -- Keys/pkcs11/wrap-key.sh 01 > /etc/token-vault/key.wrapped
#
# The key is encrypted in the token with AES-CBC-PAD and a random IV; the file also holds the SHA-256 of the key
# (a check value: a 256-bit random key cannot be found from it), so that unwrap-key.sh notices a file that was
# altered or wrapped under another key.
# Settings: see pkcs11-common.sh (PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_PIN_FILE).
. "$(dirname "$0")/pkcs11-common.sh"
[ $# -eq 1 ] || fail "usage: $script KEK_ID < key (the key on stdin, in the key file's format)"
check_id "$1"
IFS= read -r key || [ -n "${key:-}" ] || fail "stdin is empty: hand the key over with \`token-vault keygen -- $0 $1\`"
case "$key" in
*[!A-Za-z0-9+/=]*) fail "stdin does not hold a key in the key file's format (standard base64 of 32 bytes)" ;;
esac
[ ${#key} -eq 44 ] || fail "stdin does not hold a key in the key file's format (standard base64 of 32 bytes)"
iv=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
ciphertext=$(printf '%s' "$key" |
    p11 --encrypt --mechanism AES-CBC-PAD --iv "$iv" --id "$1" --input-file /dev/stdin --output-file /dev/stdout |
    base64 -w 0) || fail "the token could not encrypt with key $1 (see pkcs11-tool's message above)"
[ -n "$ciphertext" ] || fail "the token returned nothing for key $1"
check=$(printf '%s' "$key" | sha256sum | cut -c 1-64)
printf '# A token-vault data key wrapped by a key-encrypting key in a PKCS#11 token (Keys/README.md).\n'
printf 'format: token-vault-pkcs11-wrap-v1\nkek-id: %s\nmechanism: AES-CBC-PAD\niv: %s\nciphertext: %s\ncheck: %s\n' \
    "$1" "$iv" "$ciphertext" "$check"
