/// Seals and opens secrets with `crypto_secretbox` under a per-context subkey.
///
/// `subkey = BLAKE2b-256(key: K, message: context)`; stored ciphertext = `0x01 || secretbox_easy(m, nonce, subkey)`.
/// The context names field, provider and client, so a value copied into another row or field fails to open.
public struct Sealer: Sendable {
    static let formatVersion: UInt8 = 1
    /// Format byte + MAC: a sealed empty secret is this long.
    static let overhead = 1 + Sodium.macBytes

    public let keyring: Keyring

    public init(keyring: Keyring) {
        self.keyring = keyring
    }

    /// Seals `secret` under the current key with a fresh random nonce.
    public func seal(_ secret: Secret, context: SealContext) -> SealedValue {
        seal(secret, context: context, key: keyring.current)
    }

    func seal(
        _ secret: Secret, context: SealContext, key: VaultKey, nonce fixedNonce: [UInt8]? = nil
    )
        -> SealedValue
    {
        var nonce = fixedNonce ?? [UInt8](repeating: 0, count: Sodium.nonceBytes)
        if fixedNonce == nil { nonce.withUnsafeMutableBytes { Sodium.randomBytes($0) } }
        var ciphertext = [UInt8](repeating: 0, count: Self.overhead + secret.count)
        ciphertext[0] = Self.formatVersion
        Self.withSubkey(key: key, context: context) { subkey in
            ciphertext.withUnsafeMutableBytes { out in
                secret.withUnsafeBytes { message in
                    nonce.withUnsafeBytes { nonceBytes in
                        Sodium.secretboxSeal(
                            into: UnsafeMutableRawBufferPointer(rebasing: out[1...]), message: message,
                            nonce: nonceBytes, key: subkey)
                    }
                }
            }
        }
        return SealedValue(ciphertext: ciphertext, nonce: nonce)
    }

    /// Opens a value sealed under `keyID` for `context`.
    public func open(_ sealed: SealedValue, keyID: KeyID, context: SealContext) throws(VaultError) -> Secret {
        guard let key = keyring.key(for: keyID) else {
            throw VaultError(
                .unknownKey,
                "the \(context.field.rawValue) of client '\(context.clientID)', provider '\(context.provider)' is "
                    + "sealed under key \(keyID), which is not in the keyring; add that key to "
                    + "TOKEN_VAULT_PREVIOUS_KEYS (or restore it as TOKEN_VAULT_KEY).")
        }
        return try open(sealed, key: key, context: context)
    }

    func open(_ sealed: SealedValue, key: VaultKey, context: SealContext) throws(VaultError) -> Secret {
        let location = "the \(context.field.rawValue) of client '\(context.clientID)', provider '\(context.provider)'"
        guard sealed.nonce.count == Sodium.nonceBytes else {
            throw VaultError(
                .malformedCiphertext,
                "\(location) has a nonce of \(sealed.nonce.count) bytes, not \(Sodium.nonceBytes): the row is corrupted."
            )
        }
        guard sealed.ciphertext.count >= Self.overhead else {
            throw VaultError(
                .malformedCiphertext,
                "\(location) has a ciphertext of \(sealed.ciphertext.count) bytes, shorter than the \(Self.overhead) "
                    + "bytes of format byte and MAC: the row is corrupted or truncated.")
        }
        guard sealed.ciphertext[0] == Self.formatVersion else {
            throw VaultError(
                .malformedCiphertext,
                "\(location) has format byte \(sealed.ciphertext[0]), but this version reads only format "
                    + "\(Self.formatVersion): the row is corrupted, or written by a newer token-vault.")
        }
        let opened = Self.withSubkey(key: key, context: context) { subkey in
            SecureBuffer(
                count: sealed.ciphertext.count - Self.overhead, guarded: false,
                initializingWith: { out in
                    sealed.ciphertext.withUnsafeBytes { all in
                        sealed.nonce.withUnsafeBytes { nonce in
                            Sodium.secretboxOpen(
                                into: out, ciphertext: UnsafeRawBufferPointer(rebasing: all[1...]), nonce: nonce,
                                key: subkey)
                        }
                    }
                })
        }
        guard let opened else {
            throw VaultError(
                .authenticationFailed,
                "\(location) failed authentication under key \(key.id): the value was altered, copied from another "
                    + "row or field, or its key_id column names a different key than the one that sealed it. "
                    + "Restore the row from a backup or store new tokens for it.")
        }
        return Secret(storage: opened)
    }

    /// Derives the subkey for `context` into wiped stack memory and passes it to `body`.
    static func withSubkey<R>(key: VaultKey, context: SealContext, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let message = context.encoded
        return withUnsafeTemporaryAllocation(byteCount: Sodium.keyBytes, alignment: 16) { subkey in
            defer { Sodium.zero(subkey) }
            message.withUnsafeBytes { messageBytes in
                key.material.withUnsafeBytes { master in
                    Sodium.keyedHash(into: subkey, message: messageBytes, key: master)
                }
            }
            return body(UnsafeRawBufferPointer(subkey))
        }
    }
}
