import Foundation

/// What the refresh path sees of a row: the row with its refresh history (nil when none is stored), and the
/// refresh lease on it, if someone holds one.
struct RefreshState: Sendable {
    var row: SealedRow?
    /// Milliseconds until the current lease expires (negative once expired); nil when nobody holds one.
    var leaseRemaining: Int64?

    /// Whether a caller may claim the lease now.
    var leaseIsFree: Bool { (leaseRemaining ?? 0) <= 0 }
}

/// The refresh lease: single flight across processes without holding a connection or a transaction while the
/// provider is called (docs/refresh.md).
///
/// A caller claims `token_vault_refresh_leases`'s row for (client, provider) with one autocommit statement, calls
/// the provider with nothing held, and writes the result and releases the lease in one statement, with a
/// compare-and-set on the token row's version. Others poll `refreshState` until the token changes or the lease
/// is released or expires. Every statement is short and stands alone, so that this works behind a transaction
/// pooler too.
extension TokenRepository {
    /// `SealedRow.refreshColumns` of the row, and the lease's remaining milliseconds, in one statement. Works when
    /// there is no row (a fallback refresh token) by starting from a one-row VALUES.
    private static let stateSQL = """
        SELECT \(SealedRow.refreshColumns),
            (SELECT (extract(epoch FROM l.expires_at - now()) * 1000)::bigint FROM token_vault_refresh_leases l
             WHERE l.client_id = $1 AND l.provider = $2)
        FROM (VALUES (1)) AS one(x) LEFT JOIN oauth_tokens ON client_id = $1 AND provider = $2
        """

    /// The row and its lease as they are now.
    func refreshState(client: String, provider: String) async throws(VaultError) -> RefreshState {
        try await pool.withConnection(idempotent: true) { connection in
            try Self.state(on: connection, client: client, provider: provider)
        }
    }

    private static func state(
        on connection: PGConnection, client: String, provider: String
    ) throws(VaultError)
        -> RefreshState
    {
        let result = try connection.query(stateSQL, [.text(client), .text(provider)])
        let row = result.string(0, 0) == nil ? nil : SealedRow(result: result, row: 0)
        return RefreshState(row: row, leaseRemaining: result.integer(0, 17))
    }

    /// Claims the refresh lease for `holder` if it is free (no lease, an expired one, or `holder`'s own), then
    /// reads the row. Returns nil when someone else holds it.
    ///
    /// The row is read by a second statement, after the claim: under READ COMMITTED it then sees everything the
    /// previous holder committed with its release (a read in the claiming statement would not, and would
    /// refresh a token that was just refreshed).
    func claimRefreshLease(
        client: String, provider: String, holder: UUID, duration: TimeInterval
    ) async throws(VaultError) -> RefreshState? {
        let parameters: [SQLValue] = [
            .text(client), .text(provider), .text(holder.uuidString), .text(String(Int64(duration * 1000))),
        ]
        // Idempotent: a retry after a dropped connection finds its own lease and claims it again.
        return try await pool.withConnection(idempotent: true) { connection in
            let claim = try connection.query(
                """
                INSERT INTO token_vault_refresh_leases AS l (client_id, provider, holder, expires_at)
                VALUES ($1, $2, $3::uuid, now() + $4::bigint * interval '1 millisecond')
                ON CONFLICT (client_id, provider) DO UPDATE
                    SET holder = EXCLUDED.holder, claimed_at = now(), expires_at = EXCLUDED.expires_at
                    WHERE l.expires_at <= now() OR l.holder = EXCLUDED.holder
                RETURNING 1
                """, parameters)
            guard claim.rowCount == 1 else { return nil }
            return try Self.state(on: connection, client: client, provider: provider)
        }
    }

    /// Releases `holder`'s lease without writing the row (the refresh was not needed, or not allowed).
    func releaseRefreshLease(client: String, provider: String, holder: UUID) async throws(VaultError) {
        try await pool.withConnection(idempotent: true) { connection in
            _ = try connection.query(
                "DELETE FROM token_vault_refresh_leases WHERE client_id = $1 AND provider = $2 AND holder = $3::uuid",
                [.text(client), .text(provider), .text(holder.uuidString)])
        }
    }

    /// Counts one request to the provider in the row's history before it is made, so that a process killed
    /// during the request still used up its share of the provider's rate limit. Leaves `version` alone: the
    /// refresh's compare-and-set compares with the version it read.
    func recordRefreshAttempt(client: String, provider: String) async throws(VaultError) {
        try await pool.withConnection(idempotent: false) { connection in
            _ = try connection.query(
                """
                UPDATE oauth_tokens SET refresh_history = \(Self.history(attemptsParameter: "1"))
                WHERE client_id = $1 AND provider = $2
                """, [.text(client), .text(provider)])
        }
    }

    // The three writes below are retried once on a dropped connection: each is a compare-and-set (on the version,
    // or ON CONFLICT DO NOTHING), so a second run after a first that was applied changes nothing and reports the
    // row as changed; the caller then finds its own tokens in it. Losing the answer of a provider that rotates
    // refresh tokens would cost the account.

    /// A statement's `WITH` clause that releases `holder`'s lease in the same statement as the write.
    private static func releasing(_ holder: String) -> String {
        """
        WITH released AS (
            DELETE FROM token_vault_refresh_leases WHERE client_id = $1 AND provider = $2 AND holder = \(holder)::uuid
        )
        """
    }

    /// Writes refreshed tokens if the row is still at `expectedVersion`, and releases the lease. Returns the new
    /// version and metadata, or nil when someone else wrote the row meanwhile (compare-and-set lost; the lease
    /// is released all the same). `attempts` are the requests beyond the one `recordRefreshAttempt` counted.
    func storeRefreshed(
        _ row: SealedRow, expectedVersion: Int64, extraAttempts: Int, holder: UUID
    ) async throws(VaultError) -> (version: Int64, metadataJSON: String)? {
        let parameters =
            Self.upsertParameters(row) + [
                .text(String(expectedVersion)), .text(String(extraAttempts)), .text(holder.uuidString),
            ]
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(
                """
                \(Self.releasing("$13"))
                UPDATE oauth_tokens SET
                    access_token_ciphertext = $3, access_token_nonce = $4,
                    refresh_token_ciphertext = $5, refresh_token_nonce = $6, key_id = $7,
                    token_expiry = \(timestampFromMicroseconds("$8")), scopes = coalesce($9, scopes),
                    metadata = metadata || $10::jsonb,
                    needs_reauthorization = false, last_refresh_error = NULL, last_refreshed_at = now(),
                    refresh_history = \(Self.history(attemptsParameter: "$12")),
                    updated_at = now(), version = version + 1
                WHERE client_id = $1 AND provider = $2 AND version = $11::bigint
                RETURNING version, metadata::text
                """, parameters)
            guard result.rowCount == 1 else { return nil }
            return (result.integer(0, 0) ?? 0, result.string(0, 1) ?? "{}")
        }
    }

    /// Inserts tokens obtained with a fallback refresh token, unless a row appeared meanwhile (then nil), and
    /// releases the lease.
    func insertRefreshed(
        _ row: SealedRow, attempts: Int, holder: UUID
    ) async throws(VaultError) -> (version: Int64, metadataJSON: String)? {
        let parameters = Self.upsertParameters(row) + [.text(String(attempts)), .text(holder.uuidString)]
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(
                """
                \(Self.releasing("$12"))
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

    /// Records a failed refresh (and, when the provider refused the refresh token, that the user must authorize
    /// again) if the row is still at `expectedVersion`, and releases the lease.
    func recordRefreshFailure(
        client: String, provider: String, expectedVersion: Int64, needsReauthorization: Bool, message: String,
        extraAttempts: Int, holder: UUID
    ) async throws(VaultError) {
        try await pool.withConnection(idempotent: true) { connection in
            _ = try connection.query(
                """
                \(Self.releasing("$7"))
                UPDATE oauth_tokens SET
                    needs_reauthorization = needs_reauthorization OR $3::boolean, last_refresh_error = $4,
                    refresh_history = \(Self.history(attemptsParameter: "$5")),
                    updated_at = now(), version = version + 1
                WHERE client_id = $1 AND provider = $2 AND version = $6::bigint
                """,
                [
                    .text(client), .text(provider), .text(needsReauthorization ? "true" : "false"), .text(message),
                    .text(String(extraAttempts)), .text(String(expectedVersion)), .text(holder.uuidString),
                ])
        }
    }

    /// Requests made to the provider, appended to the history; entries older than an hour are dropped.
    static func history(attemptsParameter: String) -> String {
        """
        ARRAY(SELECT t FROM unnest(refresh_history) t WHERE t > now() - interval '1 hour')
            || array_fill(now(), ARRAY[\(attemptsParameter)::integer])
        """
    }
}
