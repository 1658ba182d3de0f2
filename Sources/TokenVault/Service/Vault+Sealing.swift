import Foundation

extension Vault {
    /// Seals both tokens under the current key into a row ready to write.
    package func seal(
        _ tokens: TokenSet, client: String, provider: String, cached: Bool = true
    ) throws(VaultError)
        -> SealedRow
    {
        let slot = cached ? sealer.cache.slot(key: sealer.keyring.current, provider: provider, clientID: client) : nil
        // The row's cache entry loads while the nonces and the metadata JSON are made.
        if let slot { sealer.cache.prefetch(slot) }
        var nonces = NoncePair()
        return try seal(tokens, client: client, provider: provider, cached: cached, slot: slot, nonces: &nonces)
    }

    /// `seal`, taking both nonces from `nonces` (bulk work draws them for a whole batch at once).
    func seal<Nonces: NonceSupply & ~Copyable>(
        _ tokens: TokenSet, client: String, provider: String, cached: Bool, slot: SubkeyCache.Slot? = nil,
        nonces: inout Nonces
    ) throws(VaultError)
        -> SealedRow
    {
        let metadataJSON = try tokens.storableMetadataJSON()
        let key = sealer.keyring.current
        let (access, refresh) = sealer.withRowSubkeys(
            key: key, provider: provider, clientID: client, access: tokens.accessToken != nil, cached: cached,
            slot: slot
        ) { accessSubkey, refreshSubkey in
            (
                tokens.accessToken.map { Sealer.seal($0, subkey: accessSubkey, nonce: nonces.next()) },
                Sealer.seal(tokens.refreshToken, subkey: refreshSubkey, nonce: nonces.next())
            )
        }
        return SealedRow(
            clientID: client, provider: provider, accessToken: access, refreshToken: refresh, keyID: key.id,
            expiresAt: tokens.expiresAt?.timeIntervalSince1970, scopes: tokens.scopes, metadataJSON: metadataJSON)
    }

    /// Opens both tokens of a row. Failures are logged (an audit record, without secrets) and thrown.
    package func open(_ row: SealedRow) throws(VaultError) -> StoredTokens {
        do {
            let (access, refresh) = try sealer.openRow(
                access: row.accessToken, refresh: row.refreshToken, keyID: row.keyID, provider: row.provider,
                clientID: row.clientID)
            return StoredTokens(
                clientID: row.clientID, provider: row.provider, accessToken: access, refreshToken: refresh,
                expiresAt: row.expiresAt.map { Date(timeIntervalSince1970: $0) }, scopes: row.scopes,
                metadataJSON: row.metadataJSON, keyID: row.keyID, createdAt: Date(timeIntervalSince1970: row.createdAt),
                updatedAt: Date(timeIntervalSince1970: row.updatedAt), version: row.version)
        } catch {
            throw auditOpenFailure(error, row: row)
        }
    }

    /// Leaves an audit record of a row that failed to open (ids and the error code, no secret) and returns the
    /// error to throw.
    func auditOpenFailure(_ error: VaultError, row: SealedRow) -> VaultError {
        var metadata = Self.metadata(row.clientID, row.provider, row.keyID)
        metadata["token_vault.error"] = "\(error.code)"
        logger.error("could not open a stored row", metadata: metadata)
        return error
    }
}

extension TokenSet {
    /// The metadata as the JSON the row stores, after checking that PostgreSQL can store the metadata and the
    /// scopes as they are: a NUL character (U+0000) fails a `jsonb` value (SQLSTATE 22P05), and would cut a
    /// text parameter short (libpq sends those as C strings), silently.
    func storableMetadataJSON() throws(VaultError) -> String {
        try checkScopesStorable()
        return try JSONValue.serializeForStorage(metadata)
    }

    /// `storableMetadataJSON`'s checks without writing the JSON.
    func checkStorable() throws(VaultError) {
        try checkScopesStorable()
        if JSONValue.containsNUL(metadata) { throw JSONValue.nulInMetadata }
    }

    private func checkScopesStorable() throws(VaultError) {
        if let scopes, scopes.utf8.contains(0) {
            throw VaultError(
                .invalidInput,
                "the token response's scope holds a NUL character (\\u0000), which PostgreSQL cannot store; "
                    + "remove it.")
        }
    }

    /// These tokens with every NUL character removed from the scopes and the metadata, for a provider's answer:
    /// its tokens must be kept even so (a rotated refresh token exists nowhere else). Nil when there was none.
    func removingNULs() -> TokenSet? {
        guard scopes?.utf8.contains(0) == true || JSONValue.containsNUL(metadata) else { return nil }
        var clean = self
        clean.scopes = scopes?.removingNULs
        clean.metadata = JSONValue.removingNULs(metadata)
        return clean
    }
}
