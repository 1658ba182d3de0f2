import Foundation
import Logging
import Tracing

/// SQL for `oauth_tokens`. Knows nothing of keys or plaintext: it moves sealed rows in and out.
package struct TokenRepository: Sendable {
    package let pool: ConnectionPool

    init(
        conninfo: String, maximumConnections: Int, schema: String?, preparedStatements: Bool = true,
        waitLimit: TimeInterval, statementTimeout: TimeInterval, metrics: VaultMetrics? = nil,
        tracer: (any Tracer)? = nil, logger: ContextLogger
    ) {
        pool = ConnectionPool(
            conninfo: conninfo, maximumConnections: maximumConnections, schema: schema,
            preparedStatements: preparedStatements, waitLimit: waitLimit, statementTimeout: statementTimeout,
            metrics: metrics, tracer: tracer, logger: logger)
    }

    /// Closes the connections; calls made afterwards fail.
    func shutdown() async {
        await pool.shutdown()
    }

    /// The highest migration applied to the database, 0 when the vault's tables do not exist.
    func schemaVersion() async throws(VaultError) -> Int {
        try await pool.withConnection(idempotent: true) { try Migrations.currentVersion(on: $0) }
    }

    /// Creates or upgrades the schema, in the configured PostgreSQL schema (created when missing); returns the
    /// versions applied (see `Migrations`).
    func migrate() async throws(VaultError) -> [Int] {
        let schema = pool.schema
        return try await pool.withConnection(idempotent: true) { connection throws(VaultError) in
            if let schema { try Migrations.createSchemaIfMissing(schema, on: connection) }
            return try Migrations.apply(on: connection)
        }
    }

    /// The columns an upsert writes, in the order of ``storeParameters(_:)`` (`$1` to `$11`).
    static let upsertColumns = """
        oauth_tokens (client_id, provider, access_token_ciphertext, access_token_nonce,
            refresh_token_ciphertext, refresh_token_nonce, key_id, token_expiry, scopes, metadata, accounts_server)
        """

    /// The columns a store replaces in an existing row, each with its new value as the store's own parameter
    /// (``storeParameters(_:)``): shared by ``upsert`` (as `EXCLUDED.column`) and the audited update, which must
    /// write the same.
    static let replacedColumns: [(column: String, parameter: String)] = [
        ("access_token_ciphertext", "$3::bytea"), ("access_token_nonce", "$4::bytea"),
        ("refresh_token_ciphertext", "$5::bytea"), ("refresh_token_nonce", "$6::bytea"), ("key_id", "$7::text"),
        ("token_expiry", timestampFromMicroseconds("$8")), ("scopes", "$9::text"), ("metadata", "$10::jsonb"),
    ]

    /// What a store does to an existing row besides ``replacedColumns``: the need to reauthorize cleared, the
    /// accounts server kept when none is given (`new` is its new value), the version moved on.
    static func storeBookkeeping(accountsServer new: String) -> String {
        """
        updated_at = now(), needs_reauthorization = false, last_refresh_error = NULL,
            accounts_server = coalesce(\(new), oauth_tokens.accounts_server), version = oauth_tokens.version + 1
        """
    }

    /// What an upsert does to an existing row: the same as the audited update.
    static let upsertConflictClause = """
        ON CONFLICT (client_id, provider) DO UPDATE SET
            \(replacedColumns.map { "\($0.column) = EXCLUDED.\($0.column)" }.joined(separator: ", ")),
            \(storeBookkeeping(accountsServer: "EXCLUDED.accounts_server"))
        RETURNING version
        """

    package static let upsert = PreparedStatement(
        name: "token_vault_upsert",
        sql: """
            INSERT INTO \(upsertColumns)
            VALUES ($1, $2, $3, $4, $5, $6, $7, \(timestampFromMicroseconds("$8")), $9, $10::jsonb, $11)
            \(upsertConflictClause)
            """)

    package static let select = PreparedStatement(
        name: "token_vault_select",
        sql: "SELECT \(SealedRow.columns) FROM oauth_tokens WHERE client_id = $1 AND provider = $2")

    static let delete = PreparedStatement(
        name: "token_vault_delete",
        sql: deleteKeepingAuditHead("client_id = $1 AND provider = $2"))

    /// The advisory-lock key of the audit chain named by the SQL expression `chain`: a 64-bit hash of its name
    /// (two chains sharing one only wait for each other), in a space of the vault's own (the migrations' lock is
    /// taken with one argument too, but is a constant no hash is expected to hit).
    static func chainLockKeySQL(_ chain: String) -> String {
        "hashtextextended('token-vault/audit-chain:' || \(chain), 0)"
    }

    /// Deletes the rows `condition` selects and returns their key ids. A row's audit chain outlives it: its head
    /// moves from the row to `token_vault_audit_heads`, in the same statement, so that its events stay checkable
    /// and a later row of the same (client, provider) continues the chain.
    /// Takes the chain's advisory lock first (see `lockAuditHeads`), so that an audited transaction never reads the
    /// chain while its head is moving. `condition` must name the row by `client_id = $1 AND provider = $2`.
    static func deleteKeepingAuditHead(_ condition: String) -> String {
        """
        WITH chain_lock AS (
            SELECT pg_advisory_xact_lock(\(chainLockKeySQL(Migrations.rowChainSQL(client: "$1::text", provider: "$2::text"))))
        ), gone AS (
            DELETE FROM oauth_tokens WHERE \(condition) AND EXISTS (SELECT FROM chain_lock)
            RETURNING key_id, client_id, provider, audit_seq, audit_digest, audit_mac_key_id, audit_mac
        ), kept AS (
            INSERT INTO token_vault_audit_heads (chain, seq, digest, mac_key_id, mac, updated_at)
            SELECT \(Migrations.rowChainSQL("gone")), audit_seq, audit_digest, audit_mac_key_id, audit_mac, now()
            FROM gone WHERE audit_seq IS NOT NULL
            ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, digest = EXCLUDED.digest,
                mac_key_id = EXCLUDED.mac_key_id, mac = EXCLUDED.mac, updated_at = now()
        )
        SELECT key_id FROM gone
        """
    }

    /// Keyset pagination in (client_id, provider) order: never holds the whole table.
    static let page = PreparedStatement(
        name: "token_vault_page",
        sql: """
            SELECT \(SealedRow.columns) FROM oauth_tokens
            WHERE (client_id, provider) > ($1, $2)
            ORDER BY client_id, provider
            LIMIT $3::integer
            """)

    package static func upsertParameters(_ row: SealedRow) -> [SQLValue] {
        [
            .text(row.clientID), .text(row.provider),
            row.accessToken.map { .bytes($0.ciphertext) } ?? .null,
            row.accessToken.map { .bytes($0.nonce) } ?? .null,
            .bytes(row.refreshToken.ciphertext), .bytes(row.refreshToken.nonce),
            .text(row.keyID.rawValue), microsecondsParameter(row.expiresAt),
            row.scopes.map { .text($0) } ?? .null, .text(row.metadataJSON),
        ]
    }

    /// ``upsert``'s parameters: ``upsertParameters(_:)`` and the accounts server (`$11`; nil keeps the stored one).
    package static func storeParameters(_ row: SealedRow) -> [SQLValue] {
        upsertParameters(row) + [row.accountsServer.map { .text($0) } ?? .null]
    }

    /// Inserts or replaces a row; returns its new version. The parameters are made here, on the caller's thread,
    /// so that only they travel to the connection's.
    /// Retried once on a dropped connection: writing the same sealed values twice leaves the same row.
    func upsert(_ row: SealedRow, in transaction: TokenTransaction? = nil) async throws(VaultError) -> Int64 {
        let parameters = Self.storeParameters(row)
        return try await run(in: transaction) { (connection) throws(VaultError) in
            let result = try connection.query(prepared: Self.upsert, parameters)
            return result.integer(0, 0) ?? 0
        }
    }

    func find(client: String, provider: String) async throws(VaultError) -> SealedRow? {
        try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(prepared: Self.select, [.text(client), .text(provider)])
            return result.rowCount == 0 ? nil : SealedRow(result: result, row: 0)
        }
    }

    /// Deletes the row; returns the key id it was sealed under, nil when there was none.
    func delete(
        client: String, provider: String, in transaction: TokenTransaction? = nil
    ) async throws(VaultError) -> KeyID? {
        try await run(in: transaction) { (connection) throws(VaultError) in
            let result = try connection.query(prepared: Self.delete, [.text(client), .text(provider)])
            return result.rowCount == 0 ? nil : KeyID(rawValue: result.string(0, 0) ?? "")
        }
    }

    /// Deletes the row of (client, provider) if it is still at `version`; false when it changed or is gone.
    func delete(
        client: String, provider: String, version: Int64, in transaction: TokenTransaction? = nil
    ) async throws(VaultError) -> Bool {
        try await run(in: transaction) { (connection) throws(VaultError) in
            try connection.query(
                Self.deleteKeepingAuditHead("client_id = $1 AND provider = $2 AND version = $3::bigint"),
                [.text(client), .text(provider), .text(String(version))]
            ).rowCount > 0
        }
    }

    /// Runs `body` in `transaction`, or, without one, as a statement of its own on a pooled connection (retried
    /// once on a dropped connection: every caller's statement is idempotent).
    func run<T: Sendable>(
        in transaction: TokenTransaction?, _ body: @escaping @Sendable (PGConnection) throws(VaultError) -> T
    ) async throws(VaultError) -> T {
        if let transaction { return try await transaction.run(body) }
        return try await pool.withConnection(idempotent: true) { connection in try body(connection) }
    }

    /// The rows after (client, provider) in key order, at most `limit` of them.
    func page(after cursor: (client: String, provider: String)?, limit: Int) async throws(VaultError) -> [SealedRow] {
        let parameters: [SQLValue] = [
            .text(cursor?.client ?? ""), .text(cursor?.provider ?? ""), .text(String(limit)),
        ]
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(prepared: Self.page, parameters)
            return (0..<result.rowCount).map { SealedRow(result: result, row: $0) }
        }
    }
}
