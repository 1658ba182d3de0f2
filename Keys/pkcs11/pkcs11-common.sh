# Shared by the scripts in this folder; sourced, not run. No key material here: the key-encrypting key never leaves
# the token, and the data key passes only through pipes and this shell's memory.
#
# Settings (environment):
#   PKCS11_MODULE       the token's PKCS#11 library (default: SoftHSM2's, /usr/lib/softhsm/libsofthsm2.so)
#   PKCS11_TOKEN_LABEL  the token's label (required)
#   PKCS11_PIN_FILE     a file holding the user PIN, readable only by this user (required); the PIN reaches
#                       pkcs11-tool through its environment (--pin env:…), never its arguments

set -euo pipefail
umask 077

PKCS11_MODULE=${PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
script=$(basename "$0")

fail() {
    printf '%s: %s\n' "$script" "$*" >&2
    exit 1
}

command -v pkcs11-tool >/dev/null || fail "pkcs11-tool is not installed (Debian: apt-get install opensc)"
[ -r "$PKCS11_MODULE" ] || fail "PKCS11_MODULE ($PKCS11_MODULE) is not a readable PKCS#11 library"
[ -n "${PKCS11_TOKEN_LABEL:-}" ] || fail "PKCS11_TOKEN_LABEL is not set: name the token by its label"
[ -n "${PKCS11_PIN_FILE:-}" ] || fail "PKCS11_PIN_FILE is not set: name a file that holds the user PIN"
[ -r "$PKCS11_PIN_FILE" ] || fail "cannot read PKCS11_PIN_FILE ($PKCS11_PIN_FILE)"
TOKEN_VAULT_PKCS11_PIN=$(head -n 1 "$PKCS11_PIN_FILE")
export TOKEN_VAULT_PKCS11_PIN

# A key-encrypting key is named by its CKA_ID in hex (pkcs11-tool picks secret keys by id, not by label).
check_id() {
    case "$1" in
    '' | *[!0-9a-fA-F]*) fail "a key-encrypting key id is hex digits (its CKA_ID), such as 01, not '$1'" ;;
    esac
    [ $((${#1} % 2)) -eq 0 ] || fail "a key-encrypting key id has an even number of hex digits, not '$1'"
}

# pkcs11-tool on the token, logged in; its routine notices are dropped from stderr, its errors kept (and left in
# $p11_errors, for the caller to look at).
p11_errors=$(mktemp)
trap 'rm -f "$p11_errors"' EXIT
p11() {
    local status=0
    pkcs11-tool --module "$PKCS11_MODULE" --token-label "$PKCS11_TOKEN_LABEL" --login --pin env:TOKEN_VAULT_PKCS11_PIN \
        "$@" 2>"$p11_errors" || status=$?
    grep -v -e '^Using ' -e 'ALWAYS_AUTHENTICATE' -e 'CKR_ATTRIBUTE_SENSITIVE' -e '^$' "$p11_errors" >&2 || true
    return $status
}

# The listing of the token's secret key with CKA_ID $1 (pkcs11-tool lists every secret key, whatever --id says).
key_listing() {
    p11 --list-objects --type secrkey | awk -v id="$(printf '%s' "$1" | tr 'A-F' 'a-f')" '
        /^Secret Key Object/ { if (found) printf "%s", block; block = ""; found = 0 }
        { block = block $0 "\n" }
        $1 == "ID:" && tolower($2) == id { found = 1 }
        END { if (found) printf "%s", block }'
}
