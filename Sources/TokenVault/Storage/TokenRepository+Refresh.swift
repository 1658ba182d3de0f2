import Foundation
import Synchronization

/// What the refresh path sees of a row, read in one statement, with every time on the database server's clock.
struct RefreshState: Sendable {
    /// The row; nil when none is stored (a fallback refresh token may still apply).
    var row: SealedRow?
    /// Milliseconds until the current lease expires (0 or less once expired); nil when nobody holds one.
    var leaseRemaining: Int64?
    /// How long ago, in seconds, each request to the provider within the rate limit's window was made: the row's
    /// history, or with no row the provider's fallback refresh token's.
    var recentRequestAges: [Double]
    /// When the last failed refresh was recorded on the row, in microseconds since 1970 (server clock).
    var lastFailureAt: Int64?

    /// Whether a caller may claim the lease now.
    var leaseIsFree: Bool { (leaseRemaining ?? 0) <= 0 }
}

/// How a claim of the refresh lease ended.
enum LeaseClaim: Sendable {
    /// Claimed: the row as read after the claim.
    case claimed(RefreshState)
    /// Another holder's lease is live; `at` is when the claim was tried, in microseconds since 1970 (server clock).
    case held(at: Int64)
}

/// The refresh lease: single flight across processes without holding a connection or a transaction while the
/// provider is called (docs/refresh.md).
///
/// A caller claims `token_vault_refresh_leases`'s row for (client, provider) with one autocommit statement. Before
/// each request to the provider it renews the lease and counts the request in one statement, and calls only if it
/// still holds the lease. It writes the result and releases the lease in one statement, with a compare-and-set on
/// the token row's version; the lease is released only if the write happened. Others poll `refreshState` until the
/// token changes or the lease is released or expires. Every statement stands alone, so that this works behind a
/// transaction pooler too.
extension TokenRepository {
    /// The row, the lease's remaining milliseconds, the recent requests' ages and the last failure, in one
    /// statement. Works when there is no row (a fallback refresh token) by starting from a one-row VALUES.
    /// `$3`: the rate limit's window in milliseconds.
    private static let stateSQL = """
        SELECT \(SealedRow.columns),
            (SELECT (extract(epoch FROM l.expires_at - now()) * 1000)::bigint FROM token_vault_refresh_leases l
             WHERE l.client_id = $1 AND l.provider = $2),
            array_to_string(ARRAY(
                SELECT (extract(epoch FROM now() - t) * 1000)::bigint
                FROM unnest(CASE WHEN client_id IS NULL THEN
                    (SELECT f.refresh_history FROM token_vault_fallback_refreshes f WHERE f.provider = $2)
                    ELSE refresh_history END) t
                WHERE t > now() - $3::bigint * interval '1 millisecond'), ','),
            (extract(epoch FROM last_refresh_failed_at) * 1000000)::bigint
        FROM (VALUES (1)) AS one(x) LEFT JOIN oauth_tokens ON client_id = $1 AND provider = $2
        """

    // The refresh path's statements are prepared once per connection, like the reads and writes of rows: a refresher
    // runs each thousands of times a minute, and parsing and planning them every time cost PostgreSQL more than
    // running them.
    private static let stateStatement = PreparedStatement(name: "token_vault_refresh_state", sql: stateSQL)

    /// The row and its lease as they are now. `window`: the provider's rate-limit window, in seconds.
    func refreshState(
        client: String, provider: String, window: TimeInterval
    ) async throws(VaultError)
        -> RefreshState
    {
        try await pool.withConnection(idempotent: true) { connection in
            try Self.state(on: connection, client: client, provider: provider, window: window)
        }
    }

    private static func state(
        on connection: PGConnection, client: String, provider: String, window: TimeInterval
    ) throws(VaultError) -> RefreshState {
        let result = try connection.query(
            prepared: stateStatement, [.text(client), .text(provider), .text(String(Int64(window * 1000)))])
        let row = result.string(0, 0) == nil ? nil : SealedRow(result: result, row: 0)
        let ages = (result.string(0, 18) ?? "").split(separator: ",").compactMap { Double($0).map { $0 / 1000 } }
        return RefreshState(
            row: row, leaseRemaining: result.integer(0, 17), recentRequestAges: ages,
            lastFailureAt: result.integer(0, 19))
    }

    /// Claims the lease for `$3` unless another holder's is live; returns whether it did and the server's time.
    private static let claimStatement = PreparedStatement(
        name: "token_vault_claim_lease",
        sql: """
            WITH claim AS (
                INSERT INTO token_vault_refresh_leases AS l (client_id, provider, holder, expires_at)
                VALUES ($1, $2, $3::uuid, now() + $4::bigint * interval '1 millisecond')
                ON CONFLICT (client_id, provider) DO UPDATE
                    SET holder = EXCLUDED.holder, claimed_at = now(), expires_at = EXCLUDED.expires_at
                    WHERE l.expires_at <= now() OR l.holder = EXCLUDED.holder
                RETURNING 1
            )
            SELECT EXISTS (SELECT FROM claim), (extract(epoch FROM now()) * 1000000)::bigint
            """)

    /// Claims the refresh lease for `holder` if it is free (no lease, an expired one, or `holder`'s own), then
    /// reads the row.
    ///
    /// The row is read by a second statement, after the claim: under READ COMMITTED it then sees everything the
    /// previous holder committed with its release (a read in the claiming statement would not, and would refresh a
    /// token that was just refreshed). If that read fails, the lease is released again.
    func claimRefreshLease(
        client: String, provider: String, holder: UUID, duration: TimeInterval, window: TimeInterval
    ) async throws(VaultError) -> LeaseClaim {
        let parameters: [SQLValue] = [
            .text(client), .text(provider), .text(holder.uuidString), .text(String(Int64(duration * 1000))),
        ]
        // Both statements on one connection, in one trip to the connection's thread: a refresher claims thousands
        // of leases a minute. Idempotent: a retry after a dropped connection finds its own lease and claims it
        // again, then reads the row.
        let claimed = Atomic(false)
        do {
            return try await pool.withConnection(idempotent: true) { connection in
                let result = try connection.query(prepared: Self.claimStatement, parameters)
                guard result.bool(0, 0) == true else { return LeaseClaim.held(at: result.integer(0, 1) ?? 0) }
                claimed.store(true, ordering: .relaxed)
                return .claimed(try Self.state(on: connection, client: client, provider: provider, window: window))
            }
        } catch {
            if claimed.load(ordering: .relaxed) {
                try? await releaseRefreshLease(client: client, provider: provider, holder: holder)
            }
            throw error
        }
    }

    private static let releaseStatement = PreparedStatement(
        name: "token_vault_release_lease",
        sql: "DELETE FROM token_vault_refresh_leases WHERE client_id = $1 AND provider = $2 AND holder = $3::uuid")

    /// Releases `holder`'s lease without writing the row (the refresh was not needed, not allowed, or lost).
    func releaseRefreshLease(client: String, provider: String, holder: UUID) async throws(VaultError) {
        try await pool.withConnection(idempotent: true) { connection in
            _ = try connection.query(
                prepared: Self.releaseStatement, [.text(client), .text(provider), .text(holder.uuidString)])
        }
    }

    /// Before a request to the provider: counts the request in the row's history (with no row, in the provider's
    /// fallback history), then renews `holder`'s lease for `duration` seconds from the moment of the renewal.
    /// Returns whether `holder` still holds the lease: when not, it expired while the database kept this call
    /// waiting, and another caller has taken the refresh over, so the request must not be made.
    ///
    /// Counted before it is sent, so that a process killed during the request (or a crash loop) still uses up its
    /// share of the provider's rate limit. History older than `window` (at least an hour) is dropped. One
    /// statement: the renewal reads the count's result, so it runs after the count (and after any wait for the
    /// row's lock), and it dates the lease from `clock_timestamp()`, the moment it runs, not from the statement's
    /// start.
    func recordRefreshAttempt(
        client: String, provider: String, holder: UUID, duration: TimeInterval, window: TimeInterval
    ) async throws(VaultError) -> Bool {
        let parameters: [SQLValue] = [
            .text(client), .text(provider), .text(holder.uuidString), .text(String(Int64(duration * 1000))),
            .text(String(Int64(max(window, 3600) * 1000))),
        ]
        // Not retried: a second run would count the request twice.
        return try await pool.withConnection(idempotent: false) { connection in
            let result = try connection.query(prepared: Self.recordAttemptStatement, parameters)
            return result.rowCount == 1
        }
    }

    /// Counts a request in the row's history (or the provider's fallback history) and renews `$3`'s lease.
    private static let recordAttemptStatement = PreparedStatement(
        name: "token_vault_record_attempt",
        sql: """
            WITH counted AS (
                UPDATE oauth_tokens SET refresh_history = \(Self.recent("refresh_history", "$5")) || now()
                WHERE client_id = $1 AND provider = $2
                RETURNING 1
            ), fallback AS (
                INSERT INTO token_vault_fallback_refreshes AS f (provider, refresh_history)
                SELECT $2, ARRAY[now()] WHERE NOT EXISTS (SELECT FROM counted)
                ON CONFLICT (provider) DO UPDATE
                    SET refresh_history = \(Self.recent("f.refresh_history", "$5")) || now()
                RETURNING 1
            )
            UPDATE token_vault_refresh_leases
            SET expires_at = clock_timestamp() + $4::bigint * interval '1 millisecond'
            WHERE client_id = $1 AND provider = $2 AND holder = $3::uuid
                AND (EXISTS (SELECT FROM counted) OR EXISTS (SELECT FROM fallback))
            RETURNING 1
            """)

    /// `history` without the entries older than `$window` milliseconds.
    private static func recent(_ history: String, _ window: String) -> String {
        "ARRAY(SELECT t FROM unnest(\(history)) t WHERE t > now() - \(window)::bigint * interval '1 millisecond')"
    }

    // The writes below are compare-and-sets that release the lease only when they wrote, in the same statement: a
    // write that lost leaves the lease held, so that the caller can look at the row and write again, or release.
    // They are retried once on a dropped connection: a second run after a first that was applied changes nothing
    // and reports the row as changed; the caller then finds its own tokens in it. Losing the answer of a provider
    // that rotates refresh tokens would cost the account.

    /// `WITH written AS (…)` followed by the release of `holder`'s lease if `written` returned a row.
    private static func releasing(_ holder: String, after write: String) -> String {
        """
        WITH written AS (
        \(write)
        ), released AS (
            DELETE FROM token_vault_refresh_leases
            WHERE client_id = $1 AND provider = $2 AND holder = \(holder)::uuid AND EXISTS (SELECT FROM written)
        )
        """
    }

    /// The refreshed tokens written over the row at version `$11`, then the lease released; with `audited`, only
    /// if the row's chain head is still the one the event of ``rowEventParameters(_:)`` (from `$13`) was sealed
    /// after, with that event, as ``TokenRepository/updateAudited`` does for a store.
    private static func storeRefreshedSQL(audited: Bool) -> String {
        Self.releasing(
            "$12",
            after: """
                UPDATE oauth_tokens SET
                    access_token_ciphertext = $3, access_token_nonce = $4,
                    refresh_token_ciphertext = $5, refresh_token_nonce = $6, key_id = $7,
                    token_expiry = \(timestampFromMicroseconds("$8")), scopes = coalesce($9, scopes),
                    metadata = metadata || $10::jsonb,
                    needs_reauthorization = false, last_refresh_error = NULL, last_refreshed_at = now(),
                    updated_at = now(), version = version + 1\(audited ? ", " + rowHeadAssignments(first: 13) : "")
                WHERE client_id = $1 AND provider = $2 AND version = $11::bigint
                    \(audited ? "AND " + rowHeadIs(chain: "$13", sequence: "$14") : "")
                RETURNING version, metadata::text AS metadata
                """)
            + (audited ? ", audit_event AS (\n" + rowEventInsert(first: 13, from: "written") + "\n)\n" : "")
            + "SELECT version, metadata FROM written"
    }

    /// The writes of the refresh path, prepared once per connection (see `stateStatement`).
    private static let storeRefreshedStatement = PreparedStatement(
        name: "token_vault_store_refreshed", sql: storeRefreshedSQL(audited: false))
    private static let storeRefreshedAuditedStatement = PreparedStatement(
        name: "token_vault_store_refreshed_audited", sql: storeRefreshedSQL(audited: true))

    /// Writes refreshed tokens and their `refreshed` event in one statement if the row is still at
    /// `expectedVersion` and its chain's head (kept in the row) is still the one `record` follows, then releases
    /// the lease. Nil when either moved (the lease is then still held).
    func storeRefreshedAudited(
        _ row: SealedRow, expectedVersion: Int64, holder: UUID, record: AuditRecord
    ) async throws(VaultError) -> (version: Int64, metadataJSON: String)? {
        assert(Self.describes(record.event, row), "the event takes its client, provider and key from the row")
        let parameters =
            Self.upsertParameters(row) + [.text(String(expectedVersion)), .text(holder.uuidString)]
            + Self.rowEventParameters(record)
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(prepared: Self.storeRefreshedAuditedStatement, parameters)
            guard result.rowCount == 1 else { return nil }
            return (result.integer(0, 0) ?? 0, result.string(0, 1) ?? "{}")
        }
    }

    private static let insertRefreshedStatement = PreparedStatement(
        name: "token_vault_insert_refreshed",
        sql:
            Self.releasing(
                "$11",
                after: """
                    INSERT INTO oauth_tokens (client_id, provider, access_token_ciphertext, access_token_nonce,
                        refresh_token_ciphertext, refresh_token_nonce, key_id, token_expiry, scopes, metadata,
                        last_refreshed_at, refresh_history)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, \(timestampFromMicroseconds("$8")), $9, $10::jsonb, now(),
                        coalesce((SELECT refresh_history FROM token_vault_fallback_refreshes WHERE provider = $2),
                            '{}'))
                    ON CONFLICT (client_id, provider) DO NOTHING
                    RETURNING version, metadata::text AS metadata
                    """) + "SELECT version, metadata FROM written")
    private static let recordFailureStatement = PreparedStatement(
        name: "token_vault_record_failure",
        sql:
            Self.releasing(
                "$6",
                after: """
                    UPDATE oauth_tokens SET
                        needs_reauthorization = needs_reauthorization OR $3::boolean, last_refresh_error = $4,
                        last_refresh_failed_at = now(), updated_at = now(), version = version + 1
                    WHERE client_id = $1 AND provider = $2 AND version = $5::bigint
                    RETURNING 1
                    """) + "SELECT EXISTS (SELECT FROM written)")

    /// Writes refreshed tokens if the row is still at `expectedVersion`, and then releases the lease. Returns the
    /// new version and metadata, or nil when someone else wrote the row meanwhile (the lease is then still held).
    func storeRefreshed(
        _ row: SealedRow, expectedVersion: Int64, holder: UUID, in transaction: TokenTransaction? = nil
    ) async throws(VaultError) -> (version: Int64, metadataJSON: String)? {
        let parameters =
            Self.upsertParameters(row) + [.text(String(expectedVersion)), .text(holder.uuidString)]
        return try await run(in: transaction) { (connection) throws(VaultError) in
            let result = try connection.query(
                prepared: Self.storeRefreshedStatement, parameters)
            guard result.rowCount == 1 else { return nil }
            return (result.integer(0, 0) ?? 0, result.string(0, 1) ?? "{}")
        }
    }

    /// Inserts tokens obtained with a fallback refresh token, unless a row appeared meanwhile (then nil, the lease
    /// still held), and releases the lease. The row inherits the fallback token's request history.
    func insertRefreshed(
        _ row: SealedRow, holder: UUID, in transaction: TokenTransaction? = nil
    ) async throws(VaultError) -> (version: Int64, metadataJSON: String)? {
        let parameters = Self.upsertParameters(row) + [.text(holder.uuidString)]
        return try await run(in: transaction) { (connection) throws(VaultError) in
            let result = try connection.query(
                prepared: Self.insertRefreshedStatement, parameters)
            guard result.rowCount == 1 else { return nil }
            return (result.integer(0, 0) ?? 0, result.string(0, 1) ?? "{}")
        }
    }

    /// Records a failed refresh (and, when the provider refused the refresh token, that the user must authorize
    /// again) if the row is still at `expectedVersion`, and then releases the lease. Returns false when someone
    /// else wrote the row meanwhile (the lease is then still held).
    func recordRefreshFailure(
        client: String, provider: String, expectedVersion: Int64, needsReauthorization: Bool, message: String,
        holder: UUID, in transaction: TokenTransaction? = nil
    ) async throws(VaultError) -> Bool {
        try await run(in: transaction) { (connection) throws(VaultError) in
            let result = try connection.query(
                prepared: Self.recordFailureStatement,
                [
                    .text(client), .text(provider), .text(needsReauthorization ? "true" : "false"), .text(message),
                    .text(String(expectedVersion)), .text(holder.uuidString),
                ])
            return result.bool(0, 0) ?? false
        }
    }
}
