#!/usr/bin/env python3
"""Open oauth_tokens rows sealed by token-vault (ciphertext format 1),
independently of token-vault, with PyNaCl (pip install pynacl).
Specification: docs/ciphertext-format.md. Like generate.py beside it, it uses
no code from this project.

Keys come from the environment, never from the command line:
  TOKEN_VAULT_KEY (base64) or TOKEN_VAULT_KEY_FILE (path to a file holding it),
  plus optional TOKEN_VAULT_PREVIOUS_KEYS (comma-separated base64) and
  TOKEN_VAULT_PREVIOUS_KEYS_FILE (a file with one base64 key per line; blank
  lines and lines starting with # are ignored).

Row values, either as 7 arguments
  CLIENT_ID PROVIDER KEY_ID ACCESS_CT_HEX ACCESS_NONCE_HEX REFRESH_CT_HEX REFRESH_NONCE_HEX
(pass "" "" for a NULL access token), or on stdin, one row per line, exactly as
  psql -X -At -F '|' -c "SELECT client_id, provider, key_id, ... (query in the doc)"
prints them:

    psql ... | python3 Keys/vectors/open_row.py     # rows on stdin
    python3 Keys/vectors/open_row.py CLIENT_ID PROVIDER KEY_ID ...   # one row

Exits 1 when a row or field does not open. The output is the plaintext tokens:
treat it as a secret.
"""
import base64, os, struct, sys
import nacl.bindings, nacl.encoding, nacl.exceptions, nacl.hash


def blake2b(message, key, size):  # libsodium crypto_generichash (keyed BLAKE2b)
    return nacl.hash.blake2b(message, digest_size=size, key=key,
                             encoder=nacl.encoding.RawEncoder)


def load_keys():
    path = os.environ.get("TOKEN_VAULT_KEY_FILE")
    if path:
        with open(path) as f:
            current = f.read().strip()
    else:
        current = os.environ.get("TOKEN_VAULT_KEY", "").strip()
    if not current:
        sys.exit("set TOKEN_VAULT_KEY or TOKEN_VAULT_KEY_FILE")
    texts = [("the current key", current)]
    path = os.environ.get("TOKEN_VAULT_PREVIOUS_KEYS_FILE")
    if path:  # one key per line; blank lines and lines starting with # are skipped
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f.read().split("\n"), 1):
                if line.strip() and not line.strip().startswith("#"):
                    texts.append(("line %d of TOKEN_VAULT_PREVIOUS_KEYS_FILE" % number, line.strip()))
    for number, item in enumerate(os.environ.get("TOKEN_VAULT_PREVIOUS_KEYS", "").split(","), 1):
        if item.strip():
            texts.append(("entry %d of TOKEN_VAULT_PREVIOUS_KEYS" % number, item.strip()))
    keys = {}
    for name, text in texts:  # an error names where the key came from, never its value
        try:
            key = base64.b64decode(text, validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:
            sys.exit("%s is not standard base64 of exactly 32 bytes" % name)
        keys[blake2b(b"token-vault/key-id/v1", key, 16).hex()] = key
    return keys


def context(field, provider, client_id):
    out = b""
    for s in ("token-vault/seal/v1", field, provider, client_id):
        raw = s.encode("utf-8")
        out += struct.pack(">I", len(raw)) + raw  # 4-byte big-endian length
    return out


def open_field(key, field, provider, client_id, ct_hex, nonce_hex):
    column, nonce = bytes.fromhex(ct_hex), bytes.fromhex(nonce_hex)
    if len(nonce) != 24 or len(column) <= 17:  # 17 bytes would be an empty token, which is never stored
        raise ValueError("malformed ciphertext or nonce")
    if column[0] != 0x01:
        raise ValueError("unsupported format")
    subkey = blake2b(context(field, provider, client_id), key, 32)
    try:  # crypto_secretbox_open_easy: input is tag || ciphertext
        plain = nacl.bindings.crypto_secretbox_open(column[1:], nonce, subkey)
    except nacl.exceptions.CryptoError:
        raise ValueError("authentication failed (data altered, moved, or wrong key)")
    try:  # a token is UTF-8 text; anything else was not sealed by token-vault
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("malformed: the value opens but is not UTF-8 text")


def open_row(keys, client_id, provider, key_id, a_ct, a_nonce, r_ct, r_nonce):
    print("row: client_id=%r provider=%r key_id=%s" % (client_id, provider, key_id))
    if key_id not in keys:
        print("key_id %s is not a configured key (have: %s)" % (key_id, ", ".join(keys)))
        return False
    ok = True
    for field, ct, nonce in (("access_token", a_ct, a_nonce), ("refresh_token", r_ct, r_nonce)):
        if field == "access_token" and ct == "" and nonce == "":
            print("access_token: NULL")
            continue
        try:
            print("%s: %s" % (field, open_field(keys[key_id], field, provider, client_id, ct, nonce)))
        except ValueError as e:
            print("%s: ERROR: %s" % (field, e))
            ok = False
    return ok


def main():
    keys = load_keys()
    if len(sys.argv) == 8:
        rows = [sys.argv[1:]]
    elif len(sys.argv) == 1:  # client_id may contain '|': split from the right
        rows = [line.rstrip("\r\n").rsplit("|", 6) for line in sys.stdin if line.strip()]
    else:
        sys.exit(__doc__)
    if not rows:
        sys.exit("no row given")
    ok = True
    for row in rows:
        if len(row) != 7:
            sys.exit("expected 7 '|'-separated columns, got %d" % len(row))
        client_id, *rest = row  # client_id verbatim; the other columns never hold spaces
        ok = open_row(keys, client_id, *[v.strip() for v in rest]) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
