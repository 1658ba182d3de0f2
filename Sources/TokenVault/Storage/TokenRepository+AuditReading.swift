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
        // A client's chains share a prefix, `row:<length>:<client>/`, and the chain column sorts bytewise. The
        // events have no index by chain or client (appends stay cheap): only their time's BRIN index narrows a
        // read, so each page starts no earlier than the cursor's time.
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
                    AND ($5::bigint IS NULL OR at >= \(timestampFromMicroseconds("$5")))
                    AND ($5::bigint IS NULL
                        OR (at, chain, seq) > (\(timestampFromMicroseconds("$5")), $6::text, $7::bigint))
                ORDER BY at, chain, seq
                LIMIT $8::integer
                """, parameters)
            return (0..<result.rowCount).map { Self.auditEvent(result, row: $0) }
        }
    }

    /// Reads the whole audit trail as one snapshot, so that heads and events agree however many writers are at
    /// work: hands `marks` every chain's head (kept in its row or in `token_vault_audit_heads`) and prune anchor,
    /// then `page` the events in (chain, sequence) order, `pageSize` at a time, through a cursor (one scan and
    /// one sort for the whole trail, whose events have no index by chain: see docs/audit.md).
    func readAuditTrail(
        pageSize: Int, marks: (_ heads: [String: StoredAuditMark], _ anchors: [String: StoredAuditMark]) -> Void,
        page: ([StoredAuditEvent]) async throws(VaultError) -> Void
    ) async throws(VaultError) {
        try await withTransaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
            (transaction) throws(VaultError) in
            let (heads, anchors) = try await transaction.run { (connection) throws(VaultError) in
                let heads = try connection.query(
                    """
                    SELECT \(Migrations.rowChainSQL("t")), audit_seq, audit_digest, audit_mac_key_id, audit_mac
                    FROM oauth_tokens t WHERE audit_seq IS NOT NULL
                    UNION ALL
                    SELECT chain, seq, digest, mac_key_id, mac FROM token_vault_audit_heads
                    """)
                let anchors = try connection.query(
                    "SELECT chain, seq, digest, mac_key_id, mac FROM token_vault_audit_anchors")
                return (Self.marks(heads), Self.marks(anchors))
            }
            marks(heads, anchors)
            try await transaction.run { (connection) throws(VaultError) in
                try connection.execute(
                    script: """
                        DECLARE token_vault_audit_walk NO SCROLL CURSOR FOR
                        SELECT \(Self.auditColumns) FROM token_vault_audit_events ORDER BY chain, seq
                        """)
            }
            while true {
                let events = try await transaction.run { (connection) throws(VaultError) in
                    let result = try connection.query("FETCH FORWARD \(pageSize) FROM token_vault_audit_walk")
                    return (0..<result.rowCount).map { Self.auditEvent(result, row: $0) }
                }
                if !events.isEmpty { try await page(events) }
                if events.count < pageSize { break }
            }
        }
    }

    /// Chain marks (heads or anchors) from rows of (chain, seq, digest, MAC key id, MAC); the first of a chain
    /// wins (a row's head over a stale entry of `token_vault_audit_heads`).
    static func marks(_ result: PGResult) -> [String: StoredAuditMark] {
        var marks: [String: StoredAuditMark] = [:]
        for row in 0..<result.rowCount {
            guard let chain = result.string(row, 0), marks[chain] == nil,
                let head = head(result, row: row, sequenceColumn: 1, digestColumn: 2)
            else { continue }
            marks[chain] = StoredAuditMark(
                head: head, macKeyID: KeyID(rawValue: result.string(row, 3) ?? ""), mac: result.bytes(row, 4) ?? [])
        }
        return marks
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
                SELECT count(*) FROM oauth_tokens t WHERE t.audit_seq IS NULL AND NOT EXISTS (
                    SELECT FROM token_vault_audit_heads h WHERE h.chain = \(Migrations.rowChainSQL("t")))
                """)
            return Int(result.integer(0, 0) ?? 0)
        }
    }
}

extension TokenTransaction {
    /// Moves each chain's prune anchor to its mark and deletes the chain's events up to the mark's sequence, in one
    /// statement (one scan of the events, which have no index by chain). A chain whose anchor changed since it was
    /// read as `previous` (another prune) is left alone. Returns the chains pruned and the events removed.
    func prune(
        _ marks: some Collection<(chain: String, mark: StoredAuditMark, previous: Int64?)>
    ) async throws(VaultError) -> (chains: Int, events: Int) {
        let parameters: [SQLValue] = [
            BinaryArray.text(marks.map(\.chain)), BinaryArray.int8(marks.map(\.mark.head.sequence)),
            BinaryArray.bytea(marks.map(\.mark.head.digest)), BinaryArray.text(marks.map(\.mark.macKeyID.rawValue)),
            BinaryArray.bytea(marks.map(\.mark.mac)), BinaryArray.int8(marks.map(\.previous)),
        ]
        return try await run { (connection) throws(VaultError) in
            let result = try connection.query(
                """
                WITH v AS (
                    SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[], $4::text[], $5::bytea[], $6::int8[])
                        AS v(chain, seq, digest, mac_key_id, mac, previous)
                ), created AS (
                    INSERT INTO token_vault_audit_anchors (chain, seq, digest, mac_key_id, mac, pruned_at)
                    SELECT chain, seq, digest, mac_key_id, mac, now() FROM v WHERE previous IS NULL
                    ON CONFLICT (chain) DO NOTHING
                    RETURNING chain, seq
                ), moved AS (
                    UPDATE token_vault_audit_anchors a SET seq = v.seq, digest = v.digest, mac_key_id = v.mac_key_id,
                        mac = v.mac, pruned_at = now()
                    FROM v WHERE a.chain = v.chain AND a.seq = v.previous
                    RETURNING a.chain, v.seq
                ), anchored AS (
                    SELECT * FROM created UNION ALL SELECT * FROM moved
                ), removed AS (
                    DELETE FROM token_vault_audit_events e USING anchored
                    WHERE e.chain = anchored.chain AND e.seq <= anchored.seq
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM anchored), (SELECT count(*) FROM removed)
                """, parameters)
            return (Int(result.integer(0, 0) ?? 0), Int(result.integer(0, 1) ?? 0))
        }
    }
}
