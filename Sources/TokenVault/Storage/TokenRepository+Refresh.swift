extension TokenRepository {
    /// `withTransaction`, holding the refresh lock of (client, provider): a transaction-scoped advisory lock, so
    /// that one process at a time refreshes a row and a crashed holder releases it when its session ends.
    /// - Parameters:
    ///   - lockTimeout: how long to wait for another holder; then `.timedOut`.
    ///   - idleTimeout: how long the session may sit idle inside the transaction (a frozen holder) before the
    ///     server ends it.
    func withRefreshLock<T: Sendable>(
        client: String, provider: String, lockTimeout: Double, idleTimeout: Double,
        _ body: (TokenTransaction) async throws(VaultError) -> T
    ) async throws(VaultError) -> T {
        try await withTransaction { (transaction) throws(VaultError) -> T in
            do throws(VaultError) {
                try await transaction.run { (connection) throws(VaultError) in
                    _ = try connection.query(
                        """
                        SELECT set_config('lock_timeout', $1, true),
                               set_config('idle_in_transaction_session_timeout', $2, true)
                        """,
                        [.text("\(Int(lockTimeout * 1000))ms"), .text("\(Int(idleTimeout * 1000))ms")])
                    // Length-prefixed so that no two (client, provider) pairs share a key string.
                    let key = "token-vault refresh \(client.utf8.count):\(client)/\(provider)"
                    _ = try connection.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [.text(key)])
                }
            } catch {
                guard error.sqlState == Self.lockNotAvailable else { throw error }
                throw VaultError(
                    .timedOut,
                    "another process has been refreshing the token of client '\(client)', provider '\(provider)' "
                        + "for more than \(Int(lockTimeout)) s; try again shortly.")
            }
            return try await body(transaction)
        }
    }

    /// SQLSTATE of a `lock_timeout` expiry.
    static let lockNotAvailable = "55P03"

    /// Requests made to the provider, appended to the history; entries older than an hour are dropped.
    static func history(attemptsParameter: String) -> String {
        """
        ARRAY(SELECT t FROM unnest(refresh_history) t WHERE t > now() - interval '1 hour')
            || array_fill(now(), ARRAY[\(attemptsParameter)::integer])
        """
    }
}

/// The refresh path's statements.
extension TokenTransaction {
    /// The row with its refresh history, read inside the transaction.
    func row(client: String, provider: String) async throws(VaultError) -> SealedRow? {
        try await run { (connection) throws(VaultError) in
            let result = try connection.query(
                "SELECT \(SealedRow.refreshColumns) FROM oauth_tokens WHERE client_id = $1 AND provider = $2",
                [.text(client), .text(provider)])
            return result.rowCount == 0 ? nil : SealedRow(result: result, row: 0)
        }
    }

    /// Writes refreshed tokens if the row is still at `expectedVersion`. Returns the new version and metadata,
    /// or nil when someone else wrote the row meanwhile (compare-and-set lost).
    func storeRefreshed(
        _ row: SealedRow, expectedVersion: Int64, attempts: Int
    ) async throws(VaultError) -> (version: Int64, metadataJSON: String)? {
        let parameters =
            TokenRepository.upsertParameters(row) + [.text(String(expectedVersion)), .text(String(attempts))]
        return try await run { (connection) throws(VaultError) in
            let result = try connection.query(
                """
                UPDATE oauth_tokens SET
                    access_token_ciphertext = $3, access_token_nonce = $4,
                    refresh_token_ciphertext = $5, refresh_token_nonce = $6, key_id = $7,
                    token_expiry = \(timestampFromMicroseconds("$8")), scopes = coalesce($9, scopes),
                    metadata = metadata || $10::jsonb,
                    needs_reauthorization = false, last_refresh_error = NULL, last_refreshed_at = now(),
                    refresh_history = \(TokenRepository.history(attemptsParameter: "$12")),
                    updated_at = now(), version = version + 1
                WHERE client_id = $1 AND provider = $2 AND version = $11::bigint
                RETURNING version, metadata::text
                """, parameters)
            guard result.rowCount == 1 else { return nil }
            return (result.integer(0, 0) ?? 0, result.string(0, 1) ?? "{}")
        }
    }

    /// Inserts tokens obtained with a fallback refresh token, unless a row appeared meanwhile (then nil).
    func insertRefreshed(
        _ row: SealedRow, attempts: Int
    ) async throws(VaultError) -> (version: Int64, metadataJSON: String)? {
        let parameters = TokenRepository.upsertParameters(row) + [.text(String(attempts))]
        return try await run { (connection) throws(VaultError) in
            let result = try connection.query(
                """
                INSERT INTO oauth_tokens (client_id, provider, access_token_ciphertext, access_token_nonce,
                    refresh_token_ciphertext, refresh_token_nonce, key_id, token_expiry, scopes, metadata,
                    last_refreshed_at, refresh_history)
                VALUES ($1, $2, $3, $4, $5, $6, $7, \(timestampFromMicroseconds("$8")), $9, $10::jsonb, now(),
                    array_fill(now(), ARRAY[$11::integer]))
                ON CONFLICT (client_id, provider) DO NOTHING
                RETURNING version, metadata::text
                """, parameters)
            guard result.rowCount == 1 else { return nil }
            return (result.integer(0, 0) ?? 0, result.string(0, 1) ?? "{}")
        }
    }

    /// Records a failed refresh (and, when the provider refused the refresh token, that the user must
    /// authorize again), if the row is still at `expectedVersion`.
    func recordRefreshFailure(
        client: String, provider: String, expectedVersion: Int64, needsReauthorization: Bool, message: String,
        attempts: Int
    ) async throws(VaultError) {
        try await run { (connection) throws(VaultError) in
            _ = try connection.query(
                """
                UPDATE oauth_tokens SET
                    needs_reauthorization = needs_reauthorization OR $3::boolean, last_refresh_error = $4,
                    refresh_history = \(TokenRepository.history(attemptsParameter: "$5")),
                    updated_at = now(), version = version + 1
                WHERE client_id = $1 AND provider = $2 AND version = $6::bigint
                """,
                [
                    .text(client), .text(provider), .text(needsReauthorization ? "true" : "false"), .text(message),
                    .text(String(attempts)), .text(String(expectedVersion)),
                ])
        }
    }
}
