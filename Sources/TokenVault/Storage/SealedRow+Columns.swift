/// How a `SealedRow` travels to and from PostgreSQL: the columns it is read from, and timestamps as microseconds.
extension SealedRow {
    /// The column list that `init(result:row:)` decodes, in order.
    static let columns = """
        client_id, provider, access_token_ciphertext, access_token_nonce, refresh_token_ciphertext, \
        refresh_token_nonce, key_id, token_expiry, scopes, metadata::text, created_at, updated_at, version, \
        needs_reauthorization, last_refresh_error, last_refreshed_at, accounts_server
        """

    package init(result: PGResult, row: Int) {
        var access: SealedValue?
        if let ciphertext = result.bytes(row, 2), let nonce = result.bytes(row, 3) {
            access = SealedValue(ciphertext: ciphertext, nonce: nonce)
        }
        self.init(
            clientID: result.string(row, 0) ?? "", provider: result.string(row, 1) ?? "", accessToken: access,
            refreshToken: SealedValue(ciphertext: result.bytes(row, 4) ?? [], nonce: result.bytes(row, 5) ?? []),
            keyID: KeyID(rawValue: result.string(row, 6) ?? ""), expiresAt: result.timestamp(row, 7),
            scopes: result.string(row, 8), metadataJSON: result.string(row, 9) ?? "{}")
        createdAt = result.timestamp(row, 10) ?? 0
        updatedAt = result.timestamp(row, 11) ?? 0
        version = result.integer(row, 12) ?? 0
        needsReauthorization = result.bool(row, 13) ?? false
        lastRefreshError = result.string(row, 14)
        lastRefreshedAt = result.timestamp(row, 15)
        accountsServer = result.string(row, 16)
    }
}

/// Timestamps travel as whole microseconds since 1970 and are turned into timestamptz by the SQL.
func microsecondsParameter(_ seconds: Double?) -> SQLValue {
    guard let seconds else { return .null }
    return .text(String(Int64((seconds * 1_000_000).rounded())))
}

/// `$n` as a timestamptz from microseconds since 1970 (exact, unlike `to_timestamp(float8)`).
func timestampFromMicroseconds(_ placeholder: String) -> String {
    "('epoch'::timestamptz + \(placeholder)::bigint * interval '1 microsecond')"
}
