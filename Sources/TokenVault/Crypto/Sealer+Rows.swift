/// Sealing, opening and re-sealing whole rows: the two tokens of a (client, provider) with one lookup of the row's
/// subkeys. Callers hand in tokens and get back a `SealedRow` (or the reverse); nonces and cache slots stay here.
extension Sealer {
    /// Tokens for one row of a bulk operation, before sealing.
    struct RowToSeal {
        let tokens: TokenSet
        let client: String
        let provider: String
    }

    /// A row of a batch that could not be sealed, and why.
    struct BatchFailure: Error {
        let index: Int
        let error: VaultError
    }

    /// One field of a row that could not be opened, and why.
    package struct FieldFailure: Error {
        package let field: TokenField
        package let error: VaultError
    }

    /// Seals both tokens under the current key into a row ready to write: one store.
    package func sealRow(_ tokens: TokenSet, client: String, provider: String) throws(VaultError) -> SealedRow {
        let slot = cache.slot(key: keyring.current, provider: provider, clientID: client)
        // The row's cache entry loads while the nonces and the metadata JSON are made.
        cache.prefetch(slot)
        var nonces = NoncePair()
        return try sealRow(tokens, client: client, provider: provider, cached: true, slot: slot, nonces: &nonces)
    }

    /// Seals a batch of rows for bulk work (an import): the batch's nonces are drawn in one call, and subkeys are
    /// derived without caching them (each row is touched once; caching would evict the rows a service reads).
    func sealBatch(_ rows: [RowToSeal]) throws(BatchFailure) -> [SealedRow] {
        var nonces = NonceBatch(count: 2 * rows.count)
        var sealed: [SealedRow] = []
        sealed.reserveCapacity(rows.count)
        for (index, row) in rows.enumerated() {
            do throws(VaultError) {
                sealed.append(
                    try sealRow(row.tokens, client: row.client, provider: row.provider, cached: false, nonces: &nonces))
            } catch {
                throw BatchFailure(index: index, error: error)
            }
        }
        return sealed
    }

    private func sealRow<Nonces: NonceSupply & ~Copyable>(
        _ tokens: TokenSet, client: String, provider: String, cached: Bool, slot: SubkeyCache.Slot? = nil,
        nonces: inout Nonces
    ) throws(VaultError) -> SealedRow {
        let metadataJSON = try tokens.storableMetadataJSON()
        let key = keyring.current
        let (access, refresh) = withRowSubkeys(
            key: key, provider: provider, clientID: client, access: tokens.accessToken != nil, cached: cached,
            slot: slot
        ) { accessSubkey, refreshSubkey in
            (
                tokens.accessToken.map { Self.seal($0, subkey: accessSubkey, nonce: nonces.next()) },
                Self.seal(tokens.refreshToken, subkey: refreshSubkey, nonce: nonces.next())
            )
        }
        return SealedRow(
            clientID: client, provider: provider, accessToken: access, refreshToken: refresh, keyID: key.id,
            expiresAt: tokens.expiresAt?.timeIntervalSince1970, scopes: tokens.scopes, metadataJSON: metadataJSON)
    }

    /// Opens both tokens of a row.
    package func openRow(_ row: SealedRow) throws(VaultError) -> (access: Secret?, refresh: Secret) {
        try openRow(
            access: row.accessToken, refresh: row.refreshToken, keyID: row.keyID, provider: row.provider,
            clientID: row.clientID)
    }

    /// Opens only the row's access token (nil when it has none); the refresh token stays sealed.
    package func openAccessToken(_ row: SealedRow) throws(VaultError) -> Secret? {
        guard let sealed = row.accessToken else { return nil }
        return try open(
            sealed, keyID: row.keyID,
            context: SealContext(field: .accessToken, provider: row.provider, clientID: row.clientID))
    }

    /// Opens every secret of a row without caching its subkeys, wipes the plaintext at once, and returns the
    /// fields that failed (for `verify`).
    package func failures(opening row: SealedRow) -> [FieldFailure] {
        var fields: [(TokenField, SealedValue)] = [(.refreshToken, row.refreshToken)]
        if let access = row.accessToken { fields.insert((.accessToken, access), at: 0) }
        var failures: [FieldFailure] = []
        for (field, sealed) in fields {
            do throws(VaultError) {
                _ = try open(
                    sealed, keyID: row.keyID,
                    context: SealContext(field: field, provider: row.provider, clientID: row.clientID), cached: false)
            } catch {
                failures.append(FieldFailure(field: field, error: error))
            }
        }
        return failures
    }

    /// Re-seals rows under the current key (key rotation): each secret is opened with its row's key and sealed
    /// again with a fresh nonce; the row keeps its version, for the compare-and-set that writes it. Rows already
    /// under the current key are left out; rows that do not open are reported instead.
    func resealRows(
        _ rows: [SealedRow]
    ) -> (resealed: [SealedRow], alreadyCurrent: Int, failures: [(row: SealedRow, failure: FieldFailure)]) {
        let key = keyring.current
        var nonces = NonceBatch(count: 2 * rows.count)
        var resealed: [SealedRow] = []
        var alreadyCurrent = 0
        var failures: [(row: SealedRow, failure: FieldFailure)] = []
        for row in rows {
            if row.keyID == key.id {
                alreadyCurrent += 1
                continue
            }
            do throws(FieldFailure) {
                var out = row
                if let access = row.accessToken {
                    out.accessToken = try reseal(access, field: .accessToken, of: row, under: key, nonce: nonces.next())
                }
                out.refreshToken = try reseal(
                    row.refreshToken, field: .refreshToken, of: row, under: key, nonce: nonces.next())
                out.keyID = key.id
                resealed.append(out)
            } catch {
                failures.append((row, error))
            }
        }
        return (resealed, alreadyCurrent, failures)
    }

    private func reseal(
        _ sealed: SealedValue, field: TokenField, of row: SealedRow, under key: VaultKey, nonce: [UInt8]
    ) throws(FieldFailure) -> SealedValue {
        let context = SealContext(field: field, provider: row.provider, clientID: row.clientID)
        do throws(VaultError) {
            let opened = try open(sealed, keyID: row.keyID, context: context, cached: false)
            return seal(opened, context: context, key: key, nonce: nonce, cached: false)
        } catch {
            throw FieldFailure(field: field, error: error)
        }
    }
}
