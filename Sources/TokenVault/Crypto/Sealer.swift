/// Seals and opens secrets with `crypto_secretbox` under a per-context subkey.
///
/// `subkey = BLAKE2b-256(key: K, message: context)`; stored ciphertext = `0x01 || secretbox_easy(m, nonce, subkey)`.
/// The context names field, provider and client, so a value copied into another row or field fails to open.
package struct Sealer: Sendable {
    static let formatVersion: UInt8 = 1
    /// Format byte + MAC: a sealed empty secret is this long.
    package static let overhead = 1 + Sodium.macBytes

    package let keyring: Keyring
    let cache = SubkeyCache()

    package init(keyring: Keyring) {
        self.keyring = keyring
    }

    /// Seals `secret` under the current key with a fresh random nonce.
    package func seal(_ secret: Secret, context: SealContext) -> SealedValue {
        seal(secret, context: context, key: keyring.current)
    }

    /// - Parameter nonce: a fresh random nonce when nil; callers that pass one must never repeat it under a key.
    /// - Parameter cached: false for bulk work (import, rotation) that touches each row once: caching its
    ///   subkeys would only evict the ones a service reads again.
    func seal(
        _ secret: Secret, context: SealContext, key: VaultKey, nonce fixedNonce: [UInt8]? = nil, cached: Bool = true
    )
        -> SealedValue
    {
        let nonce =
            fixedNonce
            ?? [UInt8](unsafeUninitializedCapacity: Sodium.nonceBytes) { buffer, count in
                NonceSource.fill(UnsafeMutableRawBufferPointer(buffer))
                count = Sodium.nonceBytes
            }
        return withSubkey(key: key, context: context, cached: cached) { subkey in
            Self.seal(secret, subkey: subkey, nonce: nonce)
        }
    }

    /// `0x01 || secretbox_easy(secret, nonce, subkey)` with `nonce`.
    static func seal(_ secret: Secret, subkey: UnsafeRawBufferPointer, nonce: [UInt8]) -> SealedValue {
        let length = Self.overhead + secret.count
        let ciphertext = [UInt8](unsafeUninitializedCapacity: length) { buffer, count in
            buffer[0] = Self.formatVersion
            secret.withUnsafeBytes { message in
                nonce.withUnsafeBytes { nonceBytes in
                    Sodium.secretboxSeal(
                        into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[1...]),
                        message: message, nonce: nonceBytes, key: subkey)
                }
            }
            count = length
        }
        return SealedValue(ciphertext: ciphertext, nonce: nonce)
    }

    /// Opens a value sealed under `keyID` for `context`.
    package func open(_ sealed: SealedValue, keyID: KeyID, context: SealContext) throws(VaultError) -> Secret {
        try open(sealed, keyID: keyID, context: context, cached: true)
    }

    func open(_ sealed: SealedValue, keyID: KeyID, context: SealContext, cached: Bool) throws(VaultError) -> Secret {
        try open(sealed, key: key(keyID, context), context: context, cached: cached)
    }

    /// The key named `keyID`, or the error that says which key is missing for which value.
    private func key(_ keyID: KeyID, _ context: SealContext) throws(VaultError) -> VaultKey {
        guard let key = keyring.key(for: keyID) else {
            throw VaultError(
                .unknownKey,
                "the \(context.field.rawValue) of client '\(context.clientID)', provider '\(context.provider)' is "
                    + "sealed under key \(keyID), which is not in the keyring; add that key to the keyring's previous keys."
            )
        }
        return key
    }

    func open(
        _ sealed: SealedValue, key: VaultKey, context: SealContext, cached: Bool = true
    ) throws(VaultError)
        -> Secret
    {
        try Self.checkShape(sealed, context)
        let opened = withSubkey(key: key, context: context, cached: cached) { Self.openBox(sealed, subkey: $0) }
        return try Self.opened(opened, key: key, context: context)
    }

    /// Opens both tokens of a row (the access token when there is one) with one lookup of the row's subkeys.
    /// Checks and errors come in the order of two `open` calls: the access token's shape and authentication,
    /// then the refresh token's; the refresh token is not opened when the access token fails.
    func openRow(
        access: SealedValue?, refresh: SealedValue, keyID: KeyID, provider: String, clientID: String
    ) throws(VaultError) -> (access: Secret?, refresh: Secret) {
        let accessContext = SealContext(field: .accessToken, provider: provider, clientID: clientID)
        let refreshContext = SealContext(field: .refreshToken, provider: provider, clientID: clientID)
        let key = try key(keyID, access == nil ? refreshContext : accessContext)
        if let access { try Self.checkShape(access, accessContext) }
        let opened = withRowSubkeys(
            key: key, provider: provider, clientID: clientID, access: access != nil, cached: true
        ) { (accessSubkey, refreshSubkey) -> Result<(Secret?, Secret), VaultError> in
            var openedAccess: Secret?
            if let access {
                guard let value = Self.openBox(access, subkey: accessSubkey) else {
                    return .failure(Self.authenticationFailure(key: key, context: accessContext))
                }
                let secret = Secret(storage: value)
                guard secret.isValidUTF8 else { return .failure(Self.notText(key: key, context: accessContext)) }
                openedAccess = secret
            }
            do throws(VaultError) { try Self.checkShape(refresh, refreshContext) } catch { return .failure(error) }
            guard let openedRefresh = Self.openBox(refresh, subkey: refreshSubkey) else {
                return .failure(Self.authenticationFailure(key: key, context: refreshContext))
            }
            let refresh = Secret(storage: openedRefresh)
            guard refresh.isValidUTF8 else { return .failure(Self.notText(key: key, context: refreshContext)) }
            return .success((openedAccess, refresh))
        }
        return try opened.get()
    }

    /// Where a value belongs, for error messages; built only when an error needs it.
    private static func location(_ context: SealContext) -> String {
        "the \(context.field.rawValue) of client '\(context.clientID)', provider '\(context.provider)'"
    }

    /// Refuses a value whose nonce, length or format byte cannot be right, before any crypto.
    private static func checkShape(_ sealed: SealedValue, _ context: SealContext) throws(VaultError) {
        guard sealed.nonce.count == Sodium.nonceBytes else {
            throw VaultError(
                .malformedCiphertext,
                "\(location(context)) has a nonce of \(sealed.nonce.count) bytes, not \(Sodium.nonceBytes): the row "
                    + "is corrupted.")
        }
        // A token is never empty, so a value of format byte and MAC alone (an empty token, sealed) is refused too.
        guard sealed.ciphertext.count > Self.overhead else {
            throw VaultError(
                .malformedCiphertext,
                sealed.ciphertext.count == Self.overhead
                    ? "\(location(context)) has a ciphertext of \(Self.overhead) bytes, format byte and MAC with no "
                        + "token: token-vault never stores an empty token, so the row is corrupted or was written by "
                        + "another program. Store new tokens for it."
                    : "\(location(context)) has a ciphertext of \(sealed.ciphertext.count) bytes, shorter than the "
                        + "\(Self.overhead + 1) bytes of format byte, MAC and a token of at least one byte: the row is "
                        + "corrupted or truncated.")
        }
        guard sealed.ciphertext[0] == Self.formatVersion else {
            throw VaultError(
                .malformedCiphertext,
                "\(location(context)) has format byte \(sealed.ciphertext[0]), but this version reads only format "
                    + "\(Self.formatVersion): the row is corrupted, or written by a newer token-vault.")
        }
    }

    /// `secretbox_open_easy` of a value whose shape was checked; nil when authentication fails.
    private static func openBox(_ sealed: SealedValue, subkey: UnsafeRawBufferPointer) -> SecureBuffer? {
        SecureBuffer.make(
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

    private static func opened(
        _ opened: SecureBuffer?, key: VaultKey, context: SealContext
    ) throws(VaultError)
        -> Secret
    {
        guard let opened else { throw authenticationFailure(key: key, context: context) }
        let secret = Secret(storage: opened)
        guard secret.isValidUTF8 else { throw notText(key: key, context: context) }
        return secret
    }

    /// A value that authenticated but is not UTF-8: tokens are text (the format stores their UTF-8 bytes), and a
    /// string made from other bytes would silently differ from what was sealed.
    private static func notText(key: VaultKey, context: SealContext) -> VaultError {
        VaultError(
            .malformedCiphertext,
            "\(location(context)) opened under key \(key.id) but is not UTF-8 text, which every token token-vault "
                + "stores is: it was sealed by another program holding the key. Store new tokens for it.")
    }

    private static func authenticationFailure(key: VaultKey, context: SealContext) -> VaultError {
        VaultError(
            .authenticationFailed,
            "\(location(context)) failed authentication under key \(key.id): the value was altered, copied from "
                + "another row or field, or its key_id column names a different key than the one that sealed it. "
                + "Restore the row from a backup or store new tokens for it.")
    }

    /// Calls `body` with the subkey for `context`, from the cache or freshly derived, in a stack buffer that is
    /// wiped when `body` returns.
    func withSubkey<R>(
        key: VaultKey, context: SealContext, cached: Bool, _ body: (UnsafeRawBufferPointer) -> R
    ) -> R {
        // The cache holds a row's two token fields only: any other field is always derived, never cached.
        let cached = cached && context.field != .pkceVerifier
        return withUnsafeTemporaryAllocation(byteCount: Sodium.keyBytes, alignment: 16) { subkey in
            defer { Sodium.zero(subkey) }
            if !cached || !cache.lookup(key: key, context: context, into: subkey) {
                derive(key: key, context: context, cached: cached, into: subkey)
            }
            return body(UnsafeRawBufferPointer(subkey))
        }
    }

    /// Calls `body` with the subkeys of both fields of (provider, client) under `key` (the access token's only when
    /// `access` is true, else an empty buffer), found in the cache with one lookup or derived, in a stack buffer
    /// that is wiped when `body` returns. Sealing a whole row this way touches its cache entry once.
    /// - Parameter slot: the row's place in the cache when the caller has already found it (to prefetch it).
    func withRowSubkeys<R>(
        key: VaultKey, provider: String, clientID: String, access: Bool, cached: Bool, slot: SubkeyCache.Slot? = nil,
        _ body: (_ access: UnsafeRawBufferPointer, _ refresh: UnsafeRawBufferPointer) -> R
    ) -> R {
        withUnsafeTemporaryAllocation(byteCount: 2 * Sodium.keyBytes, alignment: 16) { both in
            defer { Sodium.zero(both) }
            let found =
                cached
                ? cache.lookupRow(key: key, provider: provider, clientID: clientID, slot: slot, into: both) : 0
            let accessHalf = UnsafeMutableRawBufferPointer(rebasing: both[..<Sodium.keyBytes])
            let refreshHalf = UnsafeMutableRawBufferPointer(rebasing: both[Sodium.keyBytes...])
            if access && found & 1 == 0 {
                derive(
                    key: key, context: SealContext(field: .accessToken, provider: provider, clientID: clientID),
                    cached: cached, into: accessHalf)
            }
            if found & 2 == 0 {
                derive(
                    key: key, context: SealContext(field: .refreshToken, provider: provider, clientID: clientID),
                    cached: cached, into: refreshHalf)
            }
            return body(
                access ? UnsafeRawBufferPointer(accessHalf) : UnsafeRawBufferPointer(start: nil, count: 0),
                UnsafeRawBufferPointer(refreshHalf))
        }
    }

    /// Derives the subkey for `context` into `subkey`, and remembers it in the cache when `cached`.
    private func derive(key: VaultKey, context: SealContext, cached: Bool, into subkey: UnsafeMutableRawBufferPointer) {
        Self.deriveSubkey(key: key, context: context, into: subkey)
        if cached { cache.store(key: key, context: context, subkey: UnsafeRawBufferPointer(subkey)) }
    }

    /// `BLAKE2b-256(key: K, message: context.encoded)` into `output` (32 bytes).
    static func deriveSubkey(key: VaultKey, context: SealContext, into output: UnsafeMutableRawBufferPointer) {
        context.withEncoded { message in
            key.material.withUnsafeBytes { master in
                Sodium.keyedHash(into: output, message: message, key: master)
            }
        }
    }
}

/// Where a seal takes its nonces from: each `next()` is a fresh one, handed out once. Supplies cannot be copied,
/// so no copy can hand out the same nonces again. Nonces are not secret. A supply is ordinary memory: it lives for
/// one store or one batch of bulk work, and must never be kept across a `fork`.
protocol NonceSupply: ~Copyable {
    mutating func next() -> [UInt8]
}

/// The two nonces of one store, drawn in one call into a buffer on the stack: a store makes no allocation for
/// them beyond the two arrays it keeps.
struct NoncePair: NonceSupply, ~Copyable {
    private var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    private var used = 0

    init() {
        withUnsafeMutableBytes(of: &bytes) { NonceSource.fill($0) }
    }

    mutating func next() -> [UInt8] {
        precondition(used < 2, "a nonce pair was asked for a third nonce")
        defer { used += 1 }
        let offset = used * Sodium.nonceBytes
        return withUnsafeBytes(of: &bytes) { all in
            [UInt8](UnsafeRawBufferPointer(rebasing: all[offset..<offset + Sodium.nonceBytes]))
        }
    }
}

/// Fresh random nonces for many seals, drawn from the system in one call: each call to the system's random
/// source may be a system call, which bulk work would otherwise make twice per row.
struct NonceBatch: NonceSupply, ~Copyable {
    private var bytes: [UInt8]
    private var offset = 0

    init(count: Int) {
        let total = count * Sodium.nonceBytes
        bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            NonceSource.fill(UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[..<total])))
            initialized = total
        }
    }

    /// The next unused nonce. Each is handed out once.
    mutating func next() -> [UInt8] {
        precondition(offset + Sodium.nonceBytes <= bytes.count, "a nonce batch was asked for more nonces than it holds")
        defer { offset += Sodium.nonceBytes }
        return bytes.withUnsafeBytes { all in
            [UInt8](unsafeUninitializedCapacity: Sodium.nonceBytes) { buffer, count in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: all[offset..<offset + Sodium.nonceBytes]))
                count = Sodium.nonceBytes
            }
        }
    }
}
