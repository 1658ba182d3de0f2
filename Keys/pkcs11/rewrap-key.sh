#!/usr/bin/env bash
# Re-wraps a wrapped data key under another key-encrypting key in the same token, and prints the new wrapped key on
# stdout. The data key, and so every row of the vault, stays as it is: only the wrapping changes. The plaintext key
# passes through a pipe only.
#
#   rewrap-key.sh 02 /etc/token-vault/key.wrapped > /etc/token-vault/key.wrapped.new &&
#       mv /etc/token-vault/key.wrapped.new /etc/token-vault/key.wrapped
#
# Settings: see pkcs11-common.sh (PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_PIN_FILE).
. "$(dirname "$0")/pkcs11-common.sh"
[ $# -eq 2 ] || fail "usage: $script NEW_KEK_ID WRAPPED_KEY_FILE > NEW_WRAPPED_KEY_FILE"
check_id "$1"
dir=$(dirname "$0")
"$dir/unwrap-key.sh" "$2" | "$dir/wrap-key.sh" "$1"
