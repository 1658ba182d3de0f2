import Foundation

/// An audit event as stored, with its MAC.
package struct StoredAuditEvent: Sendable {
    package let event: AuditEvent
    package let mac: [UInt8]
}

/// A chain's head or prune anchor as stored: where the chain stands (or starts), authenticated.
package struct StoredAuditMark: Sendable {
    package let head: AuditHead
    package let macKeyID: KeyID
    package let mac: [UInt8]
}

/// Which audit events to read.
package struct AuditQuery: Sendable {
    package var client: String?
    package var provider: String?
    /// Microseconds since 1970.
    package var since: Int64?
    package var chain: String?

    package init(client: String? = nil, provider: String? = nil, since: Int64? = nil, chain: String? = nil) {
        self.client = client
        self.provider = provider
        self.since = since
        self.chain = chain
    }
}

extension TokenRepository {
    static let auditColumns = """
        chain, seq, round(extract(epoch FROM at) * 1000000)::bigint, kind, client_id, provider, key_id, outcome,
        application, host, pid::bigint, actor, details, mac_key_id, mac
        """

    static func auditEvent(_ result: PGResult, row: Int) -> StoredAuditEvent {
        let micros = result.integer(row, 2) ?? 0
        let event = AuditEvent(
            chain: result.string(row, 0) ?? "", sequence: result.integer(row, 1) ?? 0, microseconds: micros,
            kind: AuditEvent.Kind(rawValue: result.string(row, 3) ?? ""), clientID: result.string(row, 4),
            provider: result.string(row, 5), keyID: result.string(row, 6).map { KeyID(rawValue: $0) },
            outcome: result.string(row, 7) ?? "",
            actor: AuditActor(
                application: result.string(row, 8) ?? "", host: result.string(row, 9) ?? "",
                pid: Int32(truncatingIfNeeded: result.integer(row, 10) ?? 0), name: result.string(row, 11)),
            detailsJSON: result.string(row, 12) ?? "", macKeyID: KeyID(rawValue: result.string(row, 13) ?? ""))
        return StoredAuditEvent(event: event, mac: result.bytes(row, 14) ?? [])
    }

    /// Events `query` selects, oldest first, after `cursor` (time, chain, sequence), at most `limit`.
    func auditEvents(
        _ query: AuditQuery, after cursor: (micros: Int64, chain: String, sequence: Int64)?, limit: Int
    ) async throws(VaultError) -> [StoredAuditEvent] {
        // A client's chains share a prefix, `row:<length>:<client>/`, and the chain column sorts bytewise: the
        // primary key finds them without an index of their own.
        let prefix = query.client.map { "row:\($0.utf8.count):\($0)/" + (query.provider ?? "") }
        let parameters: [SQLValue] = [
            query.client.map { .text($0) } ?? .null, query.provider.map { .text($0) } ?? .null,
            query.since.map { .text(String($0)) } ?? .null, query.chain.map { .text($0) } ?? .null,
            cursor.map { .text(String($0.micros)) } ?? .null, .text(cursor?.chain ?? ""),
            .text(String(cursor?.sequence ?? 0)), .text(String(limit)), prefix.map { .text($0) } ?? .null,
            prefix.map { .text(query.provider == nil ? $0.dropLast() + "0" : $0) } ?? .null,
        ]
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(
                """
                SELECT \(Self.auditColumns) FROM token_vault_audit_events
                WHERE ($1::text IS NULL OR client_id = $1) AND ($2::text IS NULL OR provider = $2)
                    AND ($3::bigint IS NULL OR at >= \(timestampFromMicroseconds("$3")))
                    AND ($4::text IS NULL OR chain = $4)
                    AND ($9::text IS NULL OR chain >= $9::text AND chain <= $10::text)
                    AND ($5::bigint IS NULL
                        OR (at, chain, seq) > (\(timestampFromMicroseconds("$5")), $6::text, $7::bigint))
                ORDER BY at, chain, seq
                LIMIT $8::integer
                """, parameters)
            return (0..<result.rowCount).map { Self.auditEvent(result, row: $0) }
        }
    }

    /// Events in (chain, sequence) order after `cursor`, at most `limit`: how verify and prune walk the chains.
    func auditChainPage(
        after cursor: (chain: String, sequence: Int64)?, limit: Int
    ) async throws(VaultError)
        -> [StoredAuditEvent]
    {
        let parameters: [SQLValue] = [
            .text(cursor?.chain ?? ""), .text(String(cursor?.sequence ?? Int64.min)), .text(String(limit)),
        ]
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(
                """
                SELECT \(Self.auditColumns) FROM token_vault_audit_events
                WHERE (chain, seq) > ($1::text, $2::bigint)
                ORDER BY chain, seq
                LIMIT $3::integer
                """, parameters)
            return (0..<result.rowCount).map { Self.auditEvent(result, row: $0) }
        }
    }

    /// Every chain head (`anchors` false) or prune anchor (true), by chain.
    func auditMarks(anchors: Bool) async throws(VaultError) -> [String: StoredAuditMark] {
        let table = anchors ? "token_vault_audit_anchors" : "token_vault_audit_heads"
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query("SELECT chain, seq, digest, mac_key_id, mac FROM \(table)")
            var marks: [String: StoredAuditMark] = [:]
            for row in 0..<result.rowCount {
                guard let chain = result.string(row, 0),
                    let head = Self.head(result, row: row, sequenceColumn: 1, digestColumn: 2)
                else { continue }
                marks[chain] = StoredAuditMark(
                    head: head, macKeyID: KeyID(rawValue: result.string(row, 3) ?? ""), mac: result.bytes(row, 4) ?? [])
            }
            return marks
        }
    }

    /// Applies ``Migrations/grants(to:)`` for `role` in one transaction; returns the statements run.
    func grant(to role: String) async throws(VaultError) -> String {
        try await pool.withConnection(idempotent: true) { connection in
            let quoted = try connection.query("SELECT quote_ident($1)", [.text(role)]).string(0, 0) ?? ""
            let sql = Migrations.grants(to: quoted)
            try connection.execute(script: "BEGIN;\n\(sql)\nCOMMIT;")
            return sql
        }
    }

    /// Rows of `oauth_tokens` whose chain has no head: stored before the audit was on, or their chain was deleted.
    func rowsWithoutAuditChain() async throws(VaultError) -> Int {
        try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(
                """
                SELECT count(*) FROM oauth_tokens t WHERE NOT EXISTS (
                    SELECT FROM token_vault_audit_heads h
                    WHERE h.chain = 'row:' || octet_length(t.client_id) || ':' || t.client_id || '/' || t.provider)
                """)
            return Int(result.integer(0, 0) ?? 0)
        }
    }
}

extension TokenTransaction {
    /// Moves `chain`'s prune anchor to `mark` and deletes the chain's events up to its sequence. False when the
    /// anchor changed since it was read as `previous` (another prune): nothing is done then.
    func prune(chain: String, to mark: StoredAuditMark, previous: Int64?) async throws(VaultError) -> Int {
        let parameters: [SQLValue] = [
            .text(chain), .text(String(mark.head.sequence)), .bytes(mark.head.digest), .text(mark.macKeyID.rawValue),
            .bytes(mark.mac), previous.map { .text(String($0)) } ?? .null,
        ]
        return try await run { (connection) throws(VaultError) in
            let result = try connection.query(
                """
                WITH anchor AS (
                    INSERT INTO token_vault_audit_anchors AS a (chain, seq, digest, mac_key_id, mac, pruned_at)
                    SELECT $1::text, $2::bigint, $3::bytea, $4::text, $5::bytea, now()
                    WHERE $6::bigint IS NULL
                    ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, digest = EXCLUDED.digest,
                        mac_key_id = EXCLUDED.mac_key_id, mac = EXCLUDED.mac, pruned_at = now()
                    WHERE a.seq = $6::bigint
                    RETURNING 1
                ), updated AS (
                    UPDATE token_vault_audit_anchors SET seq = $2::bigint, digest = $3::bytea, mac_key_id = $4::text,
                        mac = $5::bytea, pruned_at = now()
                    WHERE chain = $1::text AND seq = $6::bigint
                    RETURNING 1
                ), removed AS (
                    DELETE FROM token_vault_audit_events
                    WHERE chain = $1::text AND seq <= $2::bigint
                        AND (EXISTS (SELECT FROM anchor) OR EXISTS (SELECT FROM updated))
                    RETURNING 1
                )
                SELECT (EXISTS (SELECT FROM anchor) OR EXISTS (SELECT FROM updated)), (SELECT count(*) FROM removed)
                """, parameters)
            guard result.bool(0, 0) == true else { return -1 }
            return Int(result.integer(0, 1) ?? 0)
        }
    }
}
