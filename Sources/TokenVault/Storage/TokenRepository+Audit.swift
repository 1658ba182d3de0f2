import Foundation

/// SQL for the audit trail: `token_vault_audit_events`, `token_vault_audit_heads`, `token_vault_audit_anchors`.
/// An event is written by the same statement, or in the same transaction, as the change it records.
extension TokenRepository {
    /// Parameters of an audit record, in the order `auditCTE` numbers them from its first placeholder.
    package static func auditParameters(_ record: AuditRecord) -> [SQLValue] {
        let event = record.event
        return [
            .text(event.chain), .text(String(event.sequence)), .bytes(record.head.digest),
            .text(event.macKeyID.rawValue), .bytes(record.headMAC), .text(String(event.microseconds)),
            .text(event.kind.rawValue), event.clientID.map { .text($0) } ?? .null,
            event.provider.map { .text($0) } ?? .null, event.keyID.map { .text($0.rawValue) } ?? .null,
            .text(event.outcome), .text(event.actor.application), .text(event.actor.host),
            .text(String(event.actor.pid)), event.actor.name.map { .text($0) } ?? .null, .text(event.detailsJSON),
            .bytes(record.mac),
        ]
    }

    /// Two CTEs, `audit_head` and `audit_event`: a compare-and-set of the chain's head (it must be at the event's
    /// sequence − 1, or, for `newChain`, absent) and, only if it moved, the event. With `gate`, nothing happens
    /// unless the CTE of that name returned a row. Parameters from `$first`, as `auditParameters` orders them.
    /// An existing chain's head is moved by a plain `UPDATE` (cheaper than `INSERT … ON CONFLICT`, and a
    /// heap-only update: no column of it is indexed but the key).
    static func auditCTE(first p: Int, gate: String? = nil, newChain: Bool) -> String {
        func n(_ offset: Int) -> String { "$\(p + offset)" }
        let gated = gate.map { "EXISTS (SELECT FROM \($0))" }
        let head =
            newChain
            ? """
            INSERT INTO token_vault_audit_heads (chain, seq, digest, mac_key_id, mac, updated_at)
            SELECT \(n(0))::text, \(n(1))::bigint, \(n(2))::bytea, \(n(3))::text, \(n(4))::bytea, now()
            WHERE \(n(1))::bigint = 1 \(gated.map { "AND \($0)" } ?? "")
            ON CONFLICT (chain) DO NOTHING
            RETURNING seq
            """
            : """
            UPDATE token_vault_audit_heads SET seq = \(n(1))::bigint, digest = \(n(2))::bytea,
                mac_key_id = \(n(3))::text, mac = \(n(4))::bytea, updated_at = now()
            WHERE chain = \(n(0))::text AND seq = \(n(1))::bigint - 1 \(gated.map { "AND \($0)" } ?? "")
            RETURNING seq
            """
        return """
            audit_head AS (
            \(head)
            ), audit_event AS (
                INSERT INTO token_vault_audit_events (chain, seq, at, kind, client_id, provider, key_id, outcome,
                    application, host, pid, actor, details, mac_key_id, mac)
                SELECT \(n(0))::text, \(n(1))::bigint, \(timestampFromMicroseconds(n(5))), \(n(6))::text,
                    \(n(7))::text, \(n(8))::text, \(n(9))::text, \(n(10))::text, \(n(11))::text, \(n(12))::text,
                    \(n(13))::integer, \(n(14))::text, \(n(15))::text, \(n(3))::text, \(n(16))::bytea
                FROM audit_head
            )
            """
    }

    /// The row's upsert and its event in one statement: the row is written only if the event is.
    package static let upsertAudited = [false, true].map { newChain in
        PreparedStatement(
            name: newChain ? "token_vault_upsert_audited_new" : "token_vault_upsert_audited",
            sql: upsertAuditedSQL(newChain: newChain))
    }

    static func upsertAuditedSQL(newChain: Bool) -> String {
        """
        WITH \(auditCTE(first: 12, newChain: newChain)), written AS (
            INSERT INTO \(upsertColumns)
            SELECT $1::text, $2::text, $3::bytea, $4::bytea, $5::bytea, $6::bytea, $7::text,
                \(timestampFromMicroseconds("$8")), $9::text, $10::jsonb, $11::text
            FROM audit_head
            \(upsertConflictClause)
        )
        SELECT (SELECT version FROM written), \(headWhenMissed("$12"))
        """
    }

    /// The chain's head as the statement found it (its sequence, its digest), read only when `audit_head` moved
    /// nothing: an uncorrelated subquery under `CASE` runs only when its branch is taken.
    static func headWhenMissed(_ chain: String) -> String {
        let missed = "NOT EXISTS (SELECT FROM audit_head)"
        let head = "FROM token_vault_audit_heads WHERE chain = \(chain)::text"
        // With its MAC, so that the writer authenticates a head it did not write before appending after it.
        return ["seq", "digest", "mac_key_id", "mac"].map { "CASE WHEN \(missed) THEN (SELECT \($0) \(head)) END" }
            .joined(separator: ", ")
    }

    /// The head in columns `first` (seq), `first + 1` (digest), `first + 2` (MAC key id) and `first + 3` (MAC);
    /// nil when there is none.
    static func mark(_ result: PGResult, row: Int, first: Int) -> StoredAuditMark? {
        guard let head = head(result, row: row, sequenceColumn: first, digestColumn: first + 1) else { return nil }
        return StoredAuditMark(
            head: head, macKeyID: KeyID(rawValue: result.string(row, first + 2) ?? ""),
            mac: result.bytes(row, first + 3) ?? [])
    }

    /// An event alone, with the same compare-and-set of its chain's head as ``upsertAudited``.
    static let append = [false, true].map { newChain in
        PreparedStatement(
            name: newChain ? "token_vault_audit_append_new" : "token_vault_audit_append",
            sql: """
                WITH \(auditCTE(first: 1, newChain: newChain))
                SELECT (SELECT seq FROM audit_head), \(headWhenMissed("$1"))
                """)
    }

    /// What an audited write found: written (the row's new version), or the chain's head had moved (where it
    /// stood when the statement started; nil when the chain has no head).
    package enum AuditedWrite: Sendable {
        case written(Int64)
        case headMoved(StoredAuditMark?)
    }

    /// Upserts a row and appends its event in one statement, if the event's chain is still at the head it was
    /// sealed after. One round trip, as without the audit; no lock is held between statements. Retried once on a
    /// dropped connection, as the plain upsert is: if the first run was applied, the second finds the head moved
    /// (to its own event), and the caller seals the event again and writes once more: two events for two writes.
    func upsertAudited(_ row: SealedRow, record: AuditRecord) async throws(VaultError) -> AuditedWrite {
        let parameters = Self.storeParameters(row) + Self.auditParameters(record)
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(
                prepared: Self.upsertAudited[record.event.sequence == 1 ? 1 : 0], parameters)
            if let version = result.integer(0, 0) { return .written(version) }
            return .headMoved(Self.mark(result, row: 0, first: 1))
        }
    }

    static func head(_ result: PGResult, row: Int, sequenceColumn: Int, digestColumn: Int) -> AuditHead? {
        guard let sequence = result.integer(row, sequenceColumn), let digest = result.bytes(row, digestColumn)
        else { return nil }
        return AuditHead(sequence: sequence, digest: digest)
    }

    /// Appends an event alone (no change of its own: a read, a failed decryption), if its chain is still at the
    /// head it was sealed after; otherwise returns where the head stood.
    func appendAudit(_ record: AuditRecord) async throws(VaultError) -> AuditedWrite {
        let parameters = Self.auditParameters(record)
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(prepared: Self.append[record.event.sequence == 1 ? 1 : 0], parameters)
            if let sequence = result.integer(0, 0) { return .written(sequence) }
            return .headMoved(Self.mark(result, row: 0, first: 1))
        }
    }
}

extension TokenTransaction {
    /// Locks the heads of `chains` (in a fixed order, so that two transactions never wait for each other) until
    /// the transaction ends, and returns them; a chain without a head is absent.
    func lockAuditHeads(_ chains: [String]) async throws(VaultError) -> [String: StoredAuditMark] {
        let sorted = Array(Set(chains)).sorted()
        return try await run { (connection) throws(VaultError) in
            let result = try connection.query(
                """
                SELECT chain, seq, digest, mac_key_id, mac FROM token_vault_audit_heads WHERE chain = ANY($1::text[])
                ORDER BY chain FOR UPDATE
                """, [BinaryArray.text(sorted)])
            var heads: [String: StoredAuditMark] = [:]
            for row in 0..<result.rowCount {
                if let chain = result.string(row, 0), let mark = TokenRepository.mark(result, row: row, first: 1) {
                    heads[chain] = mark
                }
            }
            return heads
        }
    }

    /// Appends an event in this transaction. False when its chain's head moved (only possible for a chain that had
    /// no head when it was locked: another transaction created it); the caller rolls back and starts again.
    func appendAudit(_ record: AuditRecord) async throws(VaultError) -> Bool {
        let parameters = TokenRepository.auditParameters(record)
        return try await run { (connection) throws(VaultError) in
            let result = try connection.query(
                """
                WITH \(TokenRepository.auditCTE(first: 1, newChain: record.event.sequence == 1))
                SELECT EXISTS (SELECT FROM audit_head)
                """, parameters)
            return result.bool(0, 0) ?? false
        }
    }
}

extension TokenTransaction {
    /// Appends events of distinct chains in one statement (an import's rows): each moves its chain's head by a
    /// compare-and-set as ``appendAudit(_:)`` does. False when any head had moved (a chain created meanwhile): the
    /// caller rolls back and starts again.
    func appendAudit(batch records: [AuditRecord]) async throws(VaultError) -> Bool {
        let events = records.map(\.event)
        let parameters: [SQLValue] = [
            BinaryArray.text(events.map(\.chain)), BinaryArray.int8(events.map(\.sequence)),
            BinaryArray.bytea(records.map(\.head.digest)), BinaryArray.text(events.map(\.macKeyID.rawValue)),
            BinaryArray.bytea(records.map(\.headMAC)), BinaryArray.int8(events.map(\.microseconds)),
            BinaryArray.text(events.map(\.kind.rawValue)), BinaryArray.text(events.map(\.clientID)),
            BinaryArray.text(events.map(\.provider)), BinaryArray.text(events.map { $0.keyID?.rawValue }),
            BinaryArray.text(events.map(\.outcome)), BinaryArray.text(events.map(\.actor.application)),
            BinaryArray.text(events.map(\.actor.host)), BinaryArray.int8(events.map { Int64($0.actor.pid) }),
            BinaryArray.text(events.map(\.actor.name)), BinaryArray.text(events.map(\.detailsJSON)),
            BinaryArray.bytea(records.map(\.mac)),
        ]
        let expected = records.count
        return try await run { (connection) throws(VaultError) in
            let result = try connection.query(
                """
                WITH v AS (
                    SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[], $4::text[], $5::bytea[], $6::int8[],
                        $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                        $14::int8[], $15::text[], $16::text[], $17::bytea[])
                        AS v(chain, seq, digest, mac_key_id, head_mac, at_us, kind, client_id, provider, key_id, outcome,
                            application, host, pid, actor, details, mac)
                ), moved AS (
                    INSERT INTO token_vault_audit_heads AS h (chain, seq, digest, mac_key_id, mac, updated_at)
                    SELECT chain, seq, digest, mac_key_id, head_mac, now() FROM v
                    ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, digest = EXCLUDED.digest,
                        mac_key_id = EXCLUDED.mac_key_id, mac = EXCLUDED.mac, updated_at = now()
                    WHERE h.seq = EXCLUDED.seq - 1
                    RETURNING chain, seq
                ), added AS (
                    INSERT INTO token_vault_audit_events (chain, seq, at, kind, client_id, provider, key_id, outcome,
                        application, host, pid, actor, details, mac_key_id, mac)
                    SELECT v.chain, v.seq, 'epoch'::timestamptz + v.at_us * interval '1 microsecond', v.kind,
                        v.client_id, v.provider, v.key_id, v.outcome, v.application, v.host, v.pid::integer, v.actor,
                        v.details, v.mac_key_id, v.mac
                    FROM v JOIN moved ON moved.chain = v.chain AND moved.seq = v.seq
                    RETURNING 1
                )
                SELECT count(*) FROM added
                """, parameters)
            return Int(result.integer(0, 0) ?? 0) == expected
        }
    }
}
