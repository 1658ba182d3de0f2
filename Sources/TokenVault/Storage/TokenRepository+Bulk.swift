/// Batched SQL for key rotation and import: one statement per batch, never the whole table in memory.
extension TokenRepository {
    /// Rows per key id.
    func countByKeyID() async throws(VaultError) -> [KeyID: Int] {
        try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query("SELECT key_id, count(*) FROM oauth_tokens GROUP BY key_id")
            var counts: [KeyID: Int] = [:]
            for row in 0..<result.rowCount {
                counts[KeyID(rawValue: result.string(row, 0) ?? "")] = Int(result.integer(row, 1) ?? 0)
            }
            return counts
        }
    }

    /// Per key id named by an audit event: the first and last event's time (microseconds since 1970) and the
    /// number of events; empty when there is no audit table.
    func auditUseByKeyID() async throws(VaultError) -> [KeyID: (first: Int64, last: Int64, events: Int)] {
        try await pool.withConnection(idempotent: true) { connection in
            let exists = try connection.query("SELECT to_regclass('token_vault_audit_events') IS NOT NULL")
            guard exists.bool(0, 0) == true else { return [:] }
            let result = try connection.query(
                """
                SELECT key_id, (extract(epoch FROM min(at)) * 1000000)::bigint,
                    (extract(epoch FROM max(at)) * 1000000)::bigint, count(*)
                FROM token_vault_audit_events WHERE key_id IS NOT NULL GROUP BY key_id
                """)
            var uses: [KeyID: (first: Int64, last: Int64, events: Int)] = [:]
            for row in 0..<result.rowCount {
                uses[KeyID(rawValue: result.string(row, 0) ?? "")] = (
                    result.integer(row, 1) ?? 0, result.integer(row, 2) ?? 0, Int(result.integer(row, 3) ?? 0)
                )
            }
            return uses
        }
    }

    static let pageNotUnderKey = PreparedStatement(
        name: "token_vault_page_not_under_key",
        sql: """
            SELECT \(SealedRow.columns) FROM oauth_tokens
            WHERE key_id <> $3 AND (client_id, provider) > ($1, $2)
            ORDER BY client_id, provider
            LIMIT $4::integer
            """)

    /// The next rows, in key order after `cursor`, that are not sealed under `keyID`.
    func page(
        notUnder keyID: KeyID, after cursor: (client: String, provider: String)?, limit: Int
    )
        async throws(VaultError) -> [SealedRow]
    {
        let parameters: [SQLValue] = [
            .text(cursor?.client ?? ""), .text(cursor?.provider ?? ""), .text(keyID.rawValue), .text(String(limit)),
        ]
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(prepared: Self.pageNotUnderKey, parameters)
            return (0..<result.rowCount).map { SealedRow(result: result, row: $0) }
        }
    }

    /// Rows by (client, provider), for re-reading the rows whose compare-and-set was lost.
    func rows(_ keys: [(client: String, provider: String)]) async throws(VaultError) -> [SealedRow] {
        let parameters = [BinaryArray.text(keys.map(\.client)), BinaryArray.text(keys.map(\.provider))]
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(
                """
                SELECT \(SealedRow.columns) FROM oauth_tokens
                WHERE (client_id, provider) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                """, parameters)
            return (0..<result.rowCount).map { SealedRow(result: result, row: $0) }
        }
    }

    static let resealBatch = PreparedStatement(
        name: "token_vault_reseal_batch",
        sql: """
            UPDATE oauth_tokens AS t SET
                access_token_ciphertext = v.access_ciphertext, access_token_nonce = v.access_nonce,
                refresh_token_ciphertext = v.refresh_ciphertext, refresh_token_nonce = v.refresh_nonce,
                key_id = $7, version = t.version + 1
            FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bytea[], $8::int8[])
                AS v(client_id, provider, access_ciphertext, access_nonce, refresh_ciphertext, refresh_nonce, version)
            WHERE t.client_id = v.client_id AND t.provider = v.provider AND t.version = v.version
            RETURNING t.client_id, t.provider
            """)

    /// Writes re-sealed rows, each only if its version is unchanged. Returns the (client, provider) written.
    /// `updated_at` is left alone: the tokens did not change, only their sealing.
    func reseal(
        _ rows: [SealedRow], keyID: KeyID, in transaction: TokenTransaction? = nil
    ) async throws(VaultError) -> Set<RowKey> {
        let parameters: [SQLValue] = [
            BinaryArray.text(rows.map(\.clientID)), BinaryArray.text(rows.map(\.provider)),
            BinaryArray.bytea(rows.map { $0.accessToken?.ciphertext }),
            BinaryArray.bytea(rows.map { $0.accessToken?.nonce }),
            BinaryArray.bytea(rows.map(\.refreshToken.ciphertext)), BinaryArray.bytea(rows.map(\.refreshToken.nonce)),
            .text(keyID.rawValue), BinaryArray.int8(rows.map(\.version)),
        ]
        return try await run(in: transaction) { (connection) throws(VaultError) in
            let result = try connection.query(prepared: Self.resealBatch, parameters)
            return Set(
                (0..<result.rowCount).map {
                    RowKey(client: result.string($0, 0) ?? "", provider: result.string($0, 1) ?? "")
                })
        }
    }

    static let upsertBatch = PreparedStatement(
        name: "token_vault_upsert_batch",
        sql: """
            INSERT INTO oauth_tokens (client_id, provider, access_token_ciphertext, access_token_nonce,
                refresh_token_ciphertext, refresh_token_nonce, key_id, token_expiry, scopes, metadata)
            SELECT v.client_id, v.provider, v.access_ciphertext, v.access_nonce, v.refresh_ciphertext, v.refresh_nonce,
                $7, 'epoch'::timestamptz + v.expiry * interval '1 microsecond', v.scopes, v.metadata::jsonb
            FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bytea[], $8::int8[],
                $9::text[], $10::text[])
                AS v(client_id, provider, access_ciphertext, access_nonce, refresh_ciphertext, refresh_nonce, expiry,
                    scopes, metadata)
            ON CONFLICT (client_id, provider) DO UPDATE SET
                access_token_ciphertext = EXCLUDED.access_token_ciphertext,
                access_token_nonce = EXCLUDED.access_token_nonce,
                refresh_token_ciphertext = EXCLUDED.refresh_token_ciphertext,
                refresh_token_nonce = EXCLUDED.refresh_token_nonce,
                key_id = EXCLUDED.key_id, token_expiry = EXCLUDED.token_expiry, scopes = EXCLUDED.scopes,
                metadata = EXCLUDED.metadata, needs_reauthorization = false, last_refresh_error = NULL,
                updated_at = now(), version = oauth_tokens.version + 1
            """)

    static let importBatchSize = 1000

    /// How `count` rows are split into the statements of a bulk import: a first statement of at most 100 rows, so
    /// that the database starts working after a tenth of the usual preparation, then `importBatchSize` rows each.
    package static func importBatches(_ count: Int) -> [Range<Int>] {
        let first = min(count, 100)
        return [0..<first]
            + stride(from: first, to: count, by: importBatchSize).map { $0..<min(count, $0 + importBatchSize) }
    }

    /// Seals and upserts `count` rows in batches (a (client, provider) at most once per batch) in one transaction,
    /// all or nothing, pipelined: while one batch is written on the connection's thread, `seal` makes the next
    /// on the caller's. `seal` is given the range of rows of each batch (see ``importBatches(_:)``). A single batch
    /// is one statement, retried once on a dropped connection. The transaction is run once more, sealing again,
    /// when a connection pooler in transaction mode failed its named statement and the pool switched to unnamed
    /// ones (see ``StatementMode``): it was rolled back. Returns the rows written.
    func importRows(
        count: Int, _ seal: (Range<Int>) throws(VaultError) -> [SealedRow]
    ) async throws(VaultError) -> Int {
        let batches = Self.importBatches(count)
        func parameters(_ batch: Int) throws(VaultError) -> [SQLValue] {
            let rows = try seal(batches[batch])
            return Self.upsertBatchParameters(rows, keyID: rows.first?.keyID ?? KeyID(rawValue: ""))
        }
        if batches.count == 1 {
            let only = try parameters(0)
            return try await pool.withConnection(idempotent: true) { connection in
                try connection.query(prepared: Self.upsertBatch, only).affectedRows
            }
        }
        let named = pool.statements.usesNamedStatements
        do {
            return try await withTransaction { (transaction) throws(VaultError) in
                try await Self.upsertPipelined(in: transaction, count: batches.count, parameters: parameters)
            }
        } catch  where named && !pool.statements.usesNamedStatements && StatementMode.isPoolerSymptom(error.sqlState) {
            return try await withTransaction { (transaction) throws(VaultError) in
                try await Self.upsertPipelined(in: transaction, count: batches.count, parameters: parameters)
            }
        }
    }

    /// `importRows` in a transaction the caller runs (with its audit event).
    func importRows(
        in transaction: TokenTransaction, count: Int, _ seal: (Range<Int>) throws(VaultError) -> [SealedRow]
    ) async throws(VaultError) -> Int {
        let batches = Self.importBatches(count)
        return try await Self.upsertPipelined(in: transaction, count: batches.count) { (batch) throws(VaultError) in
            let rows = try seal(batches[batch])
            return Self.upsertBatchParameters(rows, keyID: rows.first?.keyID ?? KeyID(rawValue: ""))
        }
    }

    /// The import's statements on a connection the caller holds (the bench's baseline): one statement for a single
    /// batch, else a transaction of pipelined statements.
    package static func upsertBatches(
        on connection: PooledConnection, count: Int, parameters: (Int) throws(VaultError) -> [SQLValue]
    ) async throws(VaultError) -> Int {
        if count == 1 {
            let only = try parameters(0)
            return try await connection.runTyped { (connection) throws(VaultError) in
                try connection.query(prepared: Self.upsertBatch, only).affectedRows
            }
        }
        return try await withTransaction(on: connection) { (transaction) throws(VaultError) in
            try await upsertPipelined(in: transaction, count: count, parameters: parameters)
        }
    }

    /// Runs `count` batch upserts in `transaction`: while statement `i` runs on the connection's thread,
    /// `parameters(i + 1)` (sealing, encoding) runs on the caller's.
    private static func upsertPipelined(
        in transaction: TokenTransaction, count: Int, parameters: (Int) throws(VaultError) -> [SQLValue]
    ) async throws(VaultError) -> Int {
        var next = try parameters(0)
        var written = 0
        for index in 0..<count {
            let current = next
            let statement = transaction.start { (connection) throws(VaultError) in
                try connection.query(prepared: Self.upsertBatch, current).affectedRows
            }
            do throws(VaultError) {
                if index + 1 < count { next = try parameters(index + 1) }
            } catch {
                _ = try? await statement.value()  // the connection must be idle before the transaction rolls back
                throw error
            }
            written += try await statement.value()
        }
        return written
    }

    package static func upsertBatchParameters(_ rows: [SealedRow], keyID: KeyID) -> [SQLValue] {
        [
            BinaryArray.text(rows.map(\.clientID)), BinaryArray.text(rows.map(\.provider)),
            BinaryArray.bytea(rows.map { $0.accessToken?.ciphertext }),
            BinaryArray.bytea(rows.map { $0.accessToken?.nonce }),
            BinaryArray.bytea(rows.map(\.refreshToken.ciphertext)), BinaryArray.bytea(rows.map(\.refreshToken.nonce)),
            .text(keyID.rawValue),
            BinaryArray.int8(rows.map { $0.expiresAt.map { Int64(($0 * 1_000_000).rounded()) } }),
            BinaryArray.text(rows.map(\.scopes)), BinaryArray.text(rows.map(\.metadataJSON)),
        ]
    }
}
