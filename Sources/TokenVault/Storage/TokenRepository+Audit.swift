import Foundation

/// SQL for the audit trail: `token_vault_audit_events`, `token_vault_audit_heads`, `token_vault_audit_anchors`.
/// An event is written by the same statement, or in the same transaction, as the change it records.
extension TokenRepository {
    /// Parameters of an audit record, in the order `auditCTE` numbers them from its first placeholder.
    package static func auditParameters(_ record: AuditRecord) -> [SQLValue] {
        let event = record.event
        return [
            .text(event.chain), .int8(event.sequence), .bytes(record.head.digest),
            .text(event.macKeyID.rawValue), .bytes(record.headMAC), .int8(event.microseconds),
            .text(event.kind.rawValue), event.clientID.map { .text($0) } ?? .null,
            event.provider.map { .text($0) } ?? .null, event.keyID.map { .text($0.rawValue) } ?? .null,
            .text(event.outcome), .text(event.actor.application), .text(event.actor.host),
            .int4(event.actor.pid), event.actor.name.map { .text($0) } ?? .null, .text(event.detailsJSON),
            .bytes(record.mac),
        ]
    }

    /// The columns an event is inserted with, in the order every insert of this file gives their values.
    static let auditEventColumns = """
        chain, seq, at, kind, client_id, provider, key_id, outcome, application, host, pid, actor, details, mac_key_id,
            mac
        """

    /// The event of `auditParameters` (numbered from `$first`), inserted once for each row `source` (a CTE of the
    /// same statement) returns: none when its chain's head did not move.
    static func eventInsert(first p: Int, from source: String) -> String {
        func n(_ offset: Int) -> String { "$\(p + offset)" }
        return """
            INSERT INTO token_vault_audit_events (\(auditEventColumns))
            SELECT \(n(0))::text, \(n(1))::bigint, \(timestampFromMicroseconds(n(5))), \(n(6))::text,
                \(n(7))::text, \(n(8))::text, \(n(9))::text, \(n(10))::text, \(n(11))::text, \(n(12))::text,
                \(n(13))::integer, \(n(14))::text, \(n(15))::text, \(n(3))::text, \(n(16))::bytea
            FROM \(source)
            """
    }

    /// The head columns of an `oauth_tokens` row set to the new head of `auditParameters` (numbered from `$first`).
    static func rowHeadAssignments(first p: Int) -> String {
        "audit_seq = $\(p + 1)::bigint, audit_digest = $\(p + 2)::bytea, audit_mac_key_id = $\(p + 3)::text, "
            + "audit_mac = $\(p + 4)::bytea"
    }

    /// For a chain without a row (the chain `vault`, a deleted row's): two CTEs, `audit_head` and `audit_event`,
    /// a compare-and-set of the chain's head in `token_vault_audit_heads` (it must be at the event's sequence − 1,
    /// or, for `newChain`, absent) and, only if it moved, the event. With `gate`, nothing happens unless the CTE of
    /// that name returned a row. Parameters from `$first`, as `auditParameters` orders them. An existing chain's
    /// head is moved by a plain `UPDATE` (cheaper than `INSERT … ON CONFLICT`, and a heap-only update: no column
    /// of it is indexed but the key).
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
            \(eventInsert(first: p, from: "audit_head"))
            )
            """
    }

    /// Parameters of an audit record for ``updateAudited``, after the store's own (`$12` on): what the store's
    /// parameters do not already say (the event's client, provider and key are the row's `$1`, `$2` and `$7`), the
    /// integers and the time in binary.
    package static func rowEventParameters(_ record: AuditRecord) -> [SQLValue] {
        let event = record.event
        return [
            .text(event.chain), .int8(event.sequence), .bytes(record.head.digest), .text(event.macKeyID.rawValue),
            .bytes(record.headMAC), .int8(event.microseconds - postgresEpochMicroseconds), .text(event.kind.rawValue),
            .text(event.outcome), .text(event.actor.application), .text(event.actor.host), .int4(event.actor.pid),
            event.actor.name.map { .text($0) } ?? .null, .text(event.detailsJSON), .bytes(record.mac),
        ]
    }

    /// Whether `event` names `row`'s client, provider and key, as ``updateAudited`` records it.
    static func describes(_ event: AuditEvent, _ row: SealedRow) -> Bool {
        event.clientID == row.clientID && event.provider == row.provider && event.keyID == row.keyID
    }

    /// 2000-01-01 in microseconds since 1970: where a binary `timestamptz` counts from.
    static let postgresEpochMicroseconds: Int64 = 946_684_800_000_000

    /// A store over an existing row and its event in one statement: the row's columns, and its chain's head kept
    /// in the row, are updated only if that head is still the one the event was sealed after (a compare-and-set),
    /// and the event is inserted only if the row was. An `UPDATE`, not an upsert: a row that does not exist yet,
    /// or whose head is elsewhere, takes the transaction instead (``Vault``'s `storeAudited`). Parameters: the
    /// store's (``storeParameters(_:)``), then ``rowEventParameters(_:)``. Only the row's key id may differ from
    /// the event's: the caller checks they are the same.
    package static let updateAudited = PreparedStatement(
        name: "token_vault_update_audited",
        sql: """
            WITH written AS (
                UPDATE oauth_tokens SET
                    \(replacedColumns.map { "\($0.column) = \($0.parameter)" }.joined(separator: ", ")),
                    \(storeBookkeeping(accountsServer: "$11::text")), \(rowHeadAssignments(first: 12))
                WHERE client_id = $1::text AND provider = $2::text AND \(rowHeadIs(chain: "$12", sequence: "$13"))
                RETURNING version
            ), audit_event AS (
            \(rowEventInsert(first: 12, from: "written"))
            )
            SELECT version FROM written
            """)

    /// The event of ``rowEventParameters(_:)`` (numbered from `$first`) inserted once for each row `source`
    /// returns; its client, provider and key id are the row's parameters `$1`, `$2` and `$7`.
    static func rowEventInsert(first p: Int, from source: String) -> String {
        func n(_ offset: Int) -> String { "$\(p + offset)" }
        return """
            INSERT INTO token_vault_audit_events (\(auditEventColumns))
            SELECT \(n(0))::text, \(n(1))::bigint, \(n(5))::timestamptz, \(n(6))::text, $1::text, $2::text, $7::text,
                \(n(7))::text, \(n(8))::text, \(n(9))::text, \(n(10))::integer, \(n(11))::text, \(n(12))::text,
                \(n(3))::text, \(n(13))::bytea
            FROM \(source)
            """
    }

    /// An event alone on the chain of an existing row, whose head the row keeps: the same compare-and-set.
    static let appendToRow = PreparedStatement(
        name: "token_vault_audit_append_row",
        sql: """
            WITH written AS (
                UPDATE oauth_tokens SET \(rowHeadAssignments(first: 1))
                WHERE client_id = $8::text AND provider = $9::text AND \(rowHeadIs(chain: "$1", sequence: "$2"))
                RETURNING 1
            ), audit_event AS (
            \(eventInsert(first: 1, from: "written"))
            )
            SELECT EXISTS (SELECT FROM written)
            """)

    /// The head in columns `first` (seq), `first + 1` (digest), `first + 2` (MAC key id) and `first + 3` (MAC);
    /// nil when there is none.
    static func mark(_ result: PGResult, row: Int, first: Int) -> StoredAuditMark? {
        guard let head = head(result, row: row, sequenceColumn: first, digestColumn: first + 1) else { return nil }
        return StoredAuditMark(
            head: head, macKeyID: KeyID(rawValue: result.string(row, first + 2) ?? ""),
            mac: result.bytes(row, first + 3) ?? [])
    }

    /// The head of the chain `vault`'s kind (kept in `token_vault_audit_heads`), as the statement found it, read
    /// only when `audit_head` moved nothing: an uncorrelated subquery under `CASE` runs only when its branch is
    /// taken.
    static func headWhenMissed(_ chain: String) -> String {
        let missed = "NOT EXISTS (SELECT FROM audit_head)"
        let head = "FROM token_vault_audit_heads WHERE chain = \(chain)::text"
        // With its MAC, so that the writer authenticates a head it did not write before appending after it.
        return ["seq", "digest", "mac_key_id", "mac"].map { "CASE WHEN \(missed) THEN (SELECT \($0) \(head)) END" }
            .joined(separator: ", ")
    }

    /// An event alone on a chain without a row, with the same compare-and-set of its head in
    /// `token_vault_audit_heads`.
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

    /// Where the chain of the row (client, provider) stands, as an audited write outside a transaction needs it.
    package enum RowAuditHead: Sendable {
        /// The row keeps its chain's head.
        case inRow(StoredAuditMark)
        /// The row keeps none, and the chain has none elsewhere (the row was stored while the audit was off, or
        /// before it existed): its first event starts the chain, and the row takes its head.
        case none
        /// There is no such row, or its chain's head is in `token_vault_audit_heads` (a deleted row's, stored
        /// again while the audit was off): the write takes a transaction.
        case elsewhere
    }

    /// The compare-and-set of a row's chain head in a single-statement write (the row's `audit_seq` at the
    /// event's sequence − 1), for an event whose chain is `$chain` and sequence `$sequence`. A row that keeps no
    /// head matches the chain's first event when no head is kept elsewhere.
    static func rowHeadIs(chain: String, sequence: String) -> String {
        """
        coalesce(audit_seq, 0) = \(sequence)::bigint - 1 AND (audit_seq IS NOT NULL
            OR NOT EXISTS (SELECT FROM token_vault_audit_heads WHERE chain = \(chain)::text))
        """
    }

    /// Updates an existing row and appends its event in one statement, if the row's chain is still at the head
    /// the event was sealed after; nil when it is not (or the row is gone). One round trip, as without the audit;
    /// no lock is held between statements. Retried once on a dropped connection, as the plain upsert is: if the
    /// first run was applied, the second finds the head moved (to its own event), and the caller seals the event
    /// again and writes once more: two events for two writes.
    func updateAudited(_ row: SealedRow, record: AuditRecord) async throws(VaultError) -> Int64? {
        assert(Self.describes(record.event, row), "the event takes its client, provider and key from the row")
        let parameters = Self.storeParameters(row) + Self.rowEventParameters(record)
        return try await pool.withConnection(idempotent: true) { connection in
            try connection.query(prepared: Self.updateAudited, parameters).integer(0, 0)
        }
    }

    /// Appends an event alone to the chain of an existing row (a read, a value that did not open), if the chain is
    /// still at the head the event was sealed after; false when it is not (or the row is gone).
    func appendToRow(_ record: AuditRecord) async throws(VaultError) -> Bool {
        let parameters = Self.auditParameters(record)
        return try await pool.withConnection(idempotent: true) { connection in
            try connection.query(prepared: Self.appendToRow, parameters).bool(0, 0) == true
        }
    }

    /// The head of the row (client, provider)'s chain.
    func rowAuditHead(client: String, provider: String) async throws(VaultError) -> RowAuditHead {
        try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(
                """
                SELECT audit_seq, audit_digest, audit_mac_key_id, audit_mac,
                    EXISTS (SELECT FROM token_vault_audit_heads WHERE chain = $3)
                FROM oauth_tokens WHERE client_id = $1 AND provider = $2
                """,
                [.text(client), .text(provider), .text(AuditEvent.chain(client: client, provider: provider))])
            guard result.rowCount == 1 else { return .elsewhere }
            if let mark = Self.mark(result, row: 0, first: 0) { return .inRow(mark) }
            return result.bool(0, 4) == true ? .elsewhere : .none
        }
    }

    static func head(_ result: PGResult, row: Int, sequenceColumn: Int, digestColumn: Int) -> AuditHead? {
        guard let sequence = result.integer(row, sequenceColumn), let digest = result.bytes(row, digestColumn)
        else { return nil }
        return AuditHead(sequence: sequence, digest: digest)
    }

    /// Appends an event alone to a chain without a row (the chain `vault`), if its head is still the one it was
    /// sealed after; otherwise returns where the head stood.
    func appendAudit(_ record: AuditRecord) async throws(VaultError) -> AuditedWrite {
        let parameters = Self.auditParameters(record)
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(prepared: Self.append[record.event.sequence == 1 ? 1 : 0], parameters)
            if let sequence = result.integer(0, 0) { return .written(sequence) }
            return .headMoved(Self.mark(result, row: 0, first: 1))
        }
    }
}

/// A chain's head as an audited transaction locked it.
package struct LockedAuditHead: Sendable {
    /// The head, wherever it is kept.
    var mark: StoredAuditMark
    /// Whether the chain's row keeps it (else `token_vault_audit_heads` does).
    var inRow: Bool
}

/// Where an event appended in a transaction left its chain's head.
enum AppendedAuditHead: Sendable {
    case inRow, inTable
}

extension TokenTransaction {
    /// Locks the heads of `chains` until the transaction ends and returns them; a chain without a head is absent.
    ///
    /// First each chain's advisory lock (``chainLockSQL(_:)``, in a fixed order): a chain's head moves between its
    /// row and `token_vault_audit_heads` (a delete, a row stored again) only under that lock, and a chain is
    /// started only under it, so two transactions never both find a chain absent, or read a head that another is
    /// moving. Then, in a statement of its own (a snapshot taken once those locks are held): a row's chain is
    /// locked through its row (`FOR UPDATE`), which keeps the head while it exists, and every chain through its
    /// entry in `token_vault_audit_heads` if it has one. Advisory locks, then rows, then heads, each in a fixed
    /// order, so that two transactions never wait for each other.
    func lockAuditHeads(_ chains: [String]) async throws(VaultError) -> [String: LockedAuditHead] {
        let sorted = Array(Set(chains)).sorted()
        let rows = sorted.compactMap(AuditEvent.row(ofChain:))
        try await run { (connection) throws(VaultError) in
            _ = try connection.query(
                """
                SELECT count(pg_advisory_xact_lock(\(TokenRepository.chainLockKeySQL("k.chain"))))
                FROM (SELECT chain FROM unnest($1::text[]) AS k(chain) ORDER BY 1) AS k
                """, [BinaryArray.text(sorted)])
        }
        return try await run { (connection) throws(VaultError) in
            // One round trip: the rows' heads first, then the table's (`UNION ALL` reads its branches in order).
            let result = try connection.query(
                """
                WITH in_rows AS (
                    SELECT client_id, provider, audit_seq, audit_digest, audit_mac_key_id, audit_mac FROM oauth_tokens
                    WHERE (client_id, provider) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                    ORDER BY client_id, provider FOR UPDATE
                ), in_table AS (
                    SELECT chain, seq, digest, mac_key_id, mac FROM token_vault_audit_heads
                    WHERE chain = ANY($3::text[]) ORDER BY chain FOR UPDATE
                )
                SELECT true, \(Migrations.rowChainSQL("in_rows")), audit_seq, audit_digest, audit_mac_key_id, audit_mac
                FROM in_rows
                UNION ALL
                SELECT false, chain, seq, digest, mac_key_id, mac FROM in_table
                """,
                [
                    BinaryArray.text(rows.map(\.client)), BinaryArray.text(rows.map(\.provider)),
                    BinaryArray.text(sorted),
                ])
            var heads: [String: LockedAuditHead] = [:]
            for row in 0..<result.rowCount {
                // A row that keeps no head yields none; its chain's head is then the table's, if any.
                if let chain = result.string(row, 1), heads[chain] == nil,
                    let mark = TokenRepository.mark(result, row: row, first: 2)
                {
                    heads[chain] = LockedAuditHead(mark: mark, inRow: result.bool(row, 0) == true)
                }
            }
            return heads
        }
    }

    /// Appends an event in this transaction and moves its chain's head. A row's chain keeps its head in the row
    /// while the row exists: the head moves there (out of `token_vault_audit_heads`) if the row's head is still
    /// `rowSequence` (nil: the row keeps none yet, as a row written in this transaction). Any other chain, and a
    /// row's once the row is gone, keeps it in `token_vault_audit_heads`. nil when the head had moved (only possible
    /// for a chain that had no head when it was locked: another transaction created it); the caller rolls back and
    /// starts again.
    func appendAudit(_ record: AuditRecord, rowSequence: Int64?) async throws(VaultError) -> AppendedAuditHead? {
        guard AuditEvent.row(ofChain: record.event.chain) != nil else {
            let parameters = TokenRepository.auditParameters(record)
            return try await run { (connection) throws(VaultError) in
                let result = try connection.query(
                    """
                    WITH \(TokenRepository.auditCTE(first: 1, newChain: record.event.sequence == 1))
                    SELECT EXISTS (SELECT FROM audit_head)
                    """, parameters)
                return result.bool(0, 0) == true ? .inTable : nil
            }
        }
        let parameters =
            TokenRepository.auditParameters(record) + [rowSequence.map { .text(String($0)) } ?? .null]
        return try await run { (connection) throws(VaultError) in
            let result = try connection.query(
                """
                WITH in_row AS (
                    UPDATE oauth_tokens SET \(TokenRepository.rowHeadAssignments(first: 1))
                    WHERE client_id = $8::text AND provider = $9::text AND audit_seq IS NOT DISTINCT FROM $18::bigint
                        AND NOT EXISTS (
                            SELECT FROM token_vault_audit_heads WHERE chain = $1::text AND seq <> $2::bigint - 1)
                    RETURNING 1
                ), unheaded AS (
                    DELETE FROM token_vault_audit_heads
                    WHERE chain = $1::text AND seq = $2::bigint - 1 AND EXISTS (SELECT FROM in_row)
                ), in_table AS (
                    INSERT INTO token_vault_audit_heads AS h (chain, seq, digest, mac_key_id, mac, updated_at)
                    SELECT $1::text, $2::bigint, $3::bytea, $4::text, $5::bytea, now()
                    WHERE NOT EXISTS (SELECT FROM oauth_tokens WHERE client_id = $8::text AND provider = $9::text)
                    ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, digest = EXCLUDED.digest,
                        mac_key_id = EXCLUDED.mac_key_id, mac = EXCLUDED.mac, updated_at = now()
                    WHERE h.seq = EXCLUDED.seq - 1
                    RETURNING 1
                ), moved AS (
                    SELECT 1 FROM in_row UNION ALL SELECT 1 FROM in_table
                ), audit_event AS (
                \(TokenRepository.eventInsert(first: 1, from: "moved"))
                )
                SELECT EXISTS (SELECT FROM in_row), EXISTS (SELECT FROM in_table)
                """, parameters)
            if result.bool(0, 0) == true { return .inRow }
            return result.bool(0, 1) == true ? .inTable : nil
        }
    }

    /// Appends events of distinct rows' chains in one statement (an import's rows, all written in this
    /// transaction): each moves its chain's head into its row as ``appendAudit(_:rowSequence:)`` does. False when
    /// any head had moved (a chain created meanwhile) or a row is missing: the caller rolls back and starts again.
    func appendAudit(rowBatch records: [AuditRecord], rowSequences: [Int64?]) async throws(VaultError) -> Bool {
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
            BinaryArray.bytea(records.map(\.mac)), BinaryArray.int8(rowSequences),
        ]
        let expected = records.count
        return try await run { (connection) throws(VaultError) in
            let result = try connection.query(
                """
                WITH v AS (
                    SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[], $4::text[], $5::bytea[], $6::int8[],
                        $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                        $14::int8[], $15::text[], $16::text[], $17::bytea[], $18::int8[])
                        AS v(chain, seq, digest, mac_key_id, head_mac, at_us, kind, client_id, provider, key_id, outcome,
                            application, host, pid, actor, details, mac, row_seq)
                ), moved AS (
                    UPDATE oauth_tokens t SET audit_seq = v.seq, audit_digest = v.digest, audit_mac_key_id = v.mac_key_id,
                        audit_mac = v.head_mac
                    FROM v
                    WHERE t.client_id = v.client_id AND t.provider = v.provider AND t.audit_seq IS NOT DISTINCT FROM v.row_seq
                        AND NOT EXISTS (
                            SELECT FROM token_vault_audit_heads h WHERE h.chain = v.chain AND h.seq <> v.seq - 1)
                    RETURNING v.chain, v.seq
                ), unheaded AS (
                    DELETE FROM token_vault_audit_heads h USING moved
                    WHERE h.chain = moved.chain AND h.seq = moved.seq - 1
                ), added AS (
                    INSERT INTO token_vault_audit_events (\(TokenRepository.auditEventColumns))
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
