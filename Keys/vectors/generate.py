#!/usr/bin/env python3
"""Generate Keys/vectors/token-vault-v1.json: known-answer vectors for the
token-vault ciphertext format, version 1 (see docs/ciphertext-format.md).

Independent reference implementation: written from the specification only,
using PyNaCl (libsodium) and the standard library, and no code from this
project. Fully deterministic (fixed keys, fixed nonces, no randomness):
running it again must reproduce the JSON file byte for byte.

    python3 Keys/vectors/generate.py          # rewrites token-vault-v1.json
    python3 Keys/vectors/generate.py --check  # exits 1 if the file differs

THE KEYS BELOW ARE PUBLIC TEST KEYS. NEVER USE THEM FOR REAL DATA.
"""

import base64
import json
import os
import struct
import sys

import nacl
import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash

FORMAT_BYTE = b"\x01"
KEY_ID_MESSAGE = b"token-vault/key-id/v1"
SEAL_DOMAIN = "token-vault/seal/v1"
FIELDS = ("access_token", "refresh_token")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "token-vault-v1.json")


# --- the format -------------------------------------------------------------

def blake2b(message, key, size):
    # libsodium crypto_generichash: keyed BLAKE2b, no salt, no personalization
    return nacl.hash.blake2b(message, digest_size=size, key=key,
                             encoder=nacl.encoding.RawEncoder)


def key_id(key):
    return blake2b(KEY_ID_MESSAGE, key, 16).hex()


def context(field, provider, client_id):
    assert field in FIELDS
    out = b""
    for s in (SEAL_DOMAIN, field, provider, client_id):
        raw = s.encode("utf-8")
        out += struct.pack(">I", len(raw)) + raw
    return out


def subkey(key, field, provider, client_id):
    return blake2b(context(field, provider, client_id), key, 32)


def seal(key, field, provider, client_id, plaintext, nonce):
    box = nacl.bindings.crypto_secretbox(          # = crypto_secretbox_easy
        plaintext.encode("utf-8"), nonce, subkey(key, field, provider, client_id))
    return FORMAT_BYTE + box


def open_(keys_by_id, kid, field, provider, client_id, nonce, column):
    """Returns the token, or raises ValueError."""
    if len(column) < 1 or column[:1] != FORMAT_BYTE:
        raise ValueError("unsupported format")
    if kid not in keys_by_id:
        raise ValueError("unknown key id")
    if len(nonce) != 24 or len(column) < 1 + 16:
        raise ValueError("malformed")
    try:
        m = nacl.bindings.crypto_secretbox_open(
            column[1:], nonce, subkey(keys_by_id[kid], field, provider, client_id))
    except nacl.exceptions.CryptoError:
        raise ValueError("authentication failed")
    return m.decode("utf-8")


# --- fixed inputs -------------------------------------------------------------

KEYS = [
    ("public-test-key-A", bytes(range(0x00, 0x20))),   # 00 01 .. 1f
    ("public-test-key-B", bytes(range(0xA0, 0xC0))),   # a0 a1 .. bf
]


def fixed_nonce(n):
    # Deterministic, distinct nonces for the vectors only. Real nonces are
    # 24 bytes from a CSPRNG (randombytes_buf).
    return nacl.hash.blake2b(b"token-vault test vector nonce %d" % n,
                             digest_size=24, encoder=nacl.encoding.RawEncoder)


def fake_token(label, n=32):
    # Zoho-looking token "1000.<hex>.<hex>", derived from a label.
    h = nacl.hash.blake2b(label.encode(), digest_size=64,
                          encoder=nacl.encoding.HexEncoder).decode()
    return "1000.%s.%s" % (h[:n], h[64:64 + n])


LONG_TOKEN = ("1000." + nacl.hash.blake2b(b"long token", digest_size=64,
                                          encoder=nacl.encoding.HexEncoder).decode() * 3)[:300]

# (key name, field, provider, client_id, plaintext); access/refresh pairs are rows
SEALS = [
    ("public-test-key-A", "access_token", "zoho_crm", "acme-corp", fake_token("acme crm access")),
    ("public-test-key-A", "refresh_token", "zoho_crm", "acme-corp", fake_token("acme crm refresh")),
    ("public-test-key-A", "access_token", "zoho_calendar", "acme-corp", fake_token("acme cal access")),
    ("public-test-key-A", "refresh_token", "zoho_calendar", "acme-corp", fake_token("acme cal refresh")),
    ("public-test-key-B", "access_token", "zoho_crm", "client-ü-東京", fake_token("tokyo crm access")),
    ("public-test-key-B", "refresh_token", "zoho_crm", "client-ü-東京", fake_token("tokyo crm refresh")),
    ("public-test-key-B", "access_token", "zoho_calendar", "globex", LONG_TOKEN),
    ("public-test-key-B", "refresh_token", "zoho_calendar", "globex", "x"),
    # a row whose access token is NULL: only the refresh token is sealed
    ("public-test-key-B", "refresh_token", "zoho_crm", "initech", fake_token("initech crm refresh")),
    # same row and token as entry 1, sealed under the other key
    ("public-test-key-B", "refresh_token", "zoho_crm", "acme-corp", fake_token("acme crm refresh")),
    # non-ASCII plaintext (UTF-8 message bytes, not characters)
    ("public-test-key-A", "access_token", "zoho_calendar", "client-ü-東京", "tökén-✓"),
]


def build():
    keys = [(name, k, key_id(k)) for name, k in KEYS]
    ids = {name: kid for name, _, kid in keys}
    by_name = {name: k for name, k, _ in keys}
    by_id = {kid: k for _, k, kid in keys}
    assert len(by_id) == len(keys)

    seal_entries = []
    for i, (kname, field, provider, client_id, plaintext) in enumerate(SEALS):
        k, nonce = by_name[kname], fixed_nonce(i)
        column = seal(k, field, provider, client_id, plaintext, nonce)
        assert len(column) == 1 + 16 + len(plaintext.encode("utf-8"))
        assert open_(by_id, ids[kname], field, provider, client_id, nonce, column) == plaintext
        seal_entries.append({
            "key_id": ids[kname],
            "field": field,
            "provider": provider,
            "client_id": client_id,
            "plaintext": plaintext,
            "context_hex": context(field, provider, client_id).hex(),
            "subkey_hex": subkey(k, field, provider, client_id).hex(),
            "nonce_hex": nonce.hex(),
            "ciphertext_hex": column.hex(),
        })

    def reject(reason, base, column=None, **override):
        e = {"reason": reason}
        for f in ("key_id", "field", "provider", "client_id", "nonce_hex", "ciphertext_hex"):
            e[f] = base[f]
        if column is not None:
            e["ciphertext_hex"] = column.hex()
        e.update(override)
        return e

    a = seal_entries[0]                     # access token, key A, zoho_crm, acme-corp
    r = seal_entries[1]                     # refresh token of the same row
    col = bytes.fromhex(r["ciphertext_hex"])
    other_key = ids["public-test-key-B"]
    rejects = [
        reject("authentication failure: access_token ciphertext presented as the refresh_token field",
               a, field="refresh_token"),
        reject("authentication failure: ciphertext presented with another client_id",
               a, client_id="acme-corp-2"),
        reject("authentication failure: ciphertext presented with another provider",
               a, provider="zoho_calendar"),
        reject("authentication failure: lowest bit of the last byte flipped",
               r, col[:-1] + bytes([col[-1] ^ 0x01])),
        reject("authentication failure: one bit of the Poly1305 tag flipped",
               r, col[:5] + bytes([col[5] ^ 0x80]) + col[6:]),
        reject("authentication failure: truncated by one byte", r, col[:-1]),
        reject("malformed: shorter than format byte + 16-byte tag", r, col[:16]),
        reject("unsupported format: format byte 0x02 (rest unchanged)", r, b"\x02" + col[1:]),
        reject("authentication failure: nonce of another entry", r,
               nonce_hex=seal_entries[2]["nonce_hex"]),
        reject("authentication failure: sealed under key A but labelled with key B's key_id",
               r, key_id=other_key),
        reject("unknown key id: key_id not among the configured keys", r,
               key_id="00000000000000000000000000000000"),
    ]
    for e in rejects:
        try:
            open_(by_id, e["key_id"], e["field"], e["provider"], e["client_id"],
                  bytes.fromhex(e["nonce_hex"]), bytes.fromhex(e["ciphertext_hex"]))
        except ValueError:
            continue
        raise AssertionError("reject vector opened: " + e["reason"])

    return {
        "format": 1,
        "generator": "Keys/vectors/generate.py (PyNaCl %s)" % nacl.__version__,
        "keys": [{"name": name, "key_base64": base64.b64encode(k).decode(), "key_id": kid}
                 for name, k, kid in keys],
        "seal": seal_entries,
        "reject": rejects,
    }


def main():
    text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
    if "--check" in sys.argv[1:]:
        with open(OUT, encoding="utf-8") as f:
            same = f.read() == text
        print("up to date" if same else "DIFFERS: " + OUT)
        sys.exit(0 if same else 1)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote " + OUT)


if __name__ == "__main__":
    main()
