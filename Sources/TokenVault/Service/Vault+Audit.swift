import Foundation
import Synchronization

/// The last head this process wrote or saw for each chain, so that an audited store needs no read first: it
/// seals its event after the cached head, and a statement that finds the chain moved (another process wrote it)
/// returns the head and is sealed again. Bounded: a shard is emptied when full. Sharded by chain, so that
/// concurrent writers of different rows seldom wait for the same lock.
final class AuditHeadCache: Sendable {
    private final class Shard: Sendable {
        let heads = Mutex<[String: AuditHead]>([:])
    }
    private let shards = (0..<16).map { _ in Shard() }
    static let capacity = 16_384

    private func shard(_ chain: String) -> Shard {
        shards[Int(UInt(bitPattern: chain.hashValue) % UInt(shards.count))]
    }

    func head(_ chain: String) -> AuditHead? { shard(chain).heads.withLock { $0[chain] } }

    func set(_ chain: String, _ head: AuditHead) {
        shard(chain).heads.withLock { heads in
            if heads.count >= Self.capacity / 16 { heads.removeAll(keepingCapacity: true) }
            heads[chain] = head
        }
    }
}

/// An event to write, before its chain position and MAC are known.
package struct AuditDraft: Sendable {
    var chain: String
    var kind: AuditEvent.Kind
    var client: String?
    var provider: String?
    var keyID: KeyID?
    var outcome = "ok"
    var details: [String: JSONValue] = [:]

    /// An event of the row (client, provider)'s chain.
    package static func row(
        _ kind: AuditEvent.Kind, client: String, provider: String, keyID: KeyID?, outcome: String = "ok",
        details: [String: JSONValue] = [:]
    ) -> AuditDraft {
        AuditDraft(
            chain: AuditEvent.chain(client: client, provider: provider), kind: kind, client: client,
            provider: provider, keyID: keyID, outcome: outcome, details: details)
    }

    /// An event of the chain `vault`.
    static func vault(
        _ kind: AuditEvent.Kind, keyID: KeyID? = nil, outcome: String = "ok", details: [String: JSONValue] = [:]
    ) -> AuditDraft {
        AuditDraft(
            chain: AuditEvent.vaultChain, kind: kind, client: nil, provider: nil, keyID: keyID, outcome: outcome,
            details: details)
    }
}

extension Vault {
    /// The host name, read once per process.
    static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(cString: buffer)
    }()

    var auditEnabled: Bool { configuration.audit.enabled }

    /// `draft` sealed as the event after `head`, now.
    package func auditRecord(_ draft: AuditDraft, after head: AuditHead) -> AuditRecord {
        let event = AuditEvent(
            chain: draft.chain, sequence: head.sequence + 1, microseconds: AuditEvent.now(), kind: draft.kind,
            clientID: draft.client, provider: draft.provider, keyID: draft.keyID, outcome: draft.outcome,
            actor: auditActor, detailsJSON: draft.details.isEmpty ? "{}" : JSONValue.serialize(draft.details),
            macKeyID: auditSigner.currentKeyID)
        return auditSigner.append(event, after: head)
    }

    /// The chain moved under every attempt: many processes are writing the same row at once.
    static func auditContention(_ chain: String) -> VaultError {
        VaultError(
            .conflict,
            "the audit chain \(chain) changed under every attempt to append to it (others are writing the same row "
                + "at once); nothing was written. Try again.")
    }

    /// Writes `row` and its event in one statement (see ``TokenRepository/updateAudited``) when the row exists and
    /// keeps its chain's head; otherwise, or when others keep moving the head, in a transaction. Returns the row's
    /// version.
    func storeAudited(_ row: SealedRow, _ draft: AuditDraft) async throws(VaultError) -> Int64 {
        if draft.client == row.clientID, draft.provider == row.provider, draft.keyID == row.keyID,
            case .decided(let version?) = try await writeInOneStatement(
                draft, client: row.clientID, provider: row.provider,
                { (record) throws(VaultError) in try await repository.updateAudited(row, record: record) })
        {
            return version
        }
        // A new row, a row whose chain's head is kept elsewhere, or others writing this row at once: take its
        // chain's lock, which always succeeds, at the cost of a transaction.
        return try await auditedTransaction(chains: [draft.chain]) { (transaction) throws(VaultError) in
            (try await repository.upsert(row, in: transaction), [draft])
        }
    }

    static func headRemoved(_ chain: String, _ known: AuditHead) -> VaultError {
        VaultError(
            .authenticationFailed,
            "the head of the audit chain \(chain) (event \(known.sequence) when this process last saw it) was removed "
                + "from its row without the key, so nothing was written after it. verifyAudit() names the chain.")
    }

    /// What a single-statement audited write found.
    enum OneStatementWrite<T: Sendable>: Sendable {
        /// Written (its value); or nil: not written although the chain's head was where the event was sealed, so
        /// something else about the row refused it (a compare-and-set on its version lost, or it is gone).
        case decided(T?)
        /// The row does not keep its chain's head (or there is no row), or others keep moving the head: the write
        /// takes a transaction.
        case needsTransaction
    }

    /// Writes `draft`'s event with a change of the row (client, provider) in one statement, without a lock: `write`
    /// gets the record sealed after the head this process last saw for the chain, and writes only if the row still
    /// keeps that head (nil when it did not write). Then the row's head is read, authenticated, and the event
    /// sealed again after it, once. A row that keeps no head while its chain has none elsewhere starts the chain.
    func writeInOneStatement<T: Sendable>(
        _ draft: AuditDraft, client: String, provider: String,
        _ write: (AuditRecord) async throws(VaultError) -> T?
    ) async throws(VaultError) -> OneStatementWrite<T> {
        var head = auditHeads.head(draft.chain)
        var unverified: KeyID? = nil
        for _ in 0..<Self.optimisticAttempts {
            if let known = head {
                let record = auditRecord(Self.noting(unverified, draft), after: known)
                if let written = try await write(record) {
                    auditHeads.set(draft.chain, record.head)
                    return .decided(written)
                }
            }
            let found: AuditHead
            switch try await repository.rowAuditHead(client: client, provider: provider) {
            case .elsewhere: return .needsTransaction
            case .none:
                // No head in the row, none elsewhere. A head this process wrote or read cannot vanish so: a delete
                // moves it to token_vault_audit_heads (`.elsewhere`). Someone emptied it without the key; starting
                // the chain again would put a second event 1 beside the chain's events.
                if let known = head, known.sequence > 0 { throw Self.headRemoved(draft.chain, known) }
                (found, unverified) = (.genesis, nil)
            case .inRow(let mark): (found, unverified) = try trustedHead(mark, chain: draft.chain)
            }
            if let known = head, found == known { return .decided(nil) }
            head = found
        }
        return .needsTransaction
    }

    /// The head the database holds for `chain`, once it authenticates: an event is only appended after a head
    /// this vault's keyring vouches for, so that someone who can write to the database but has no key cannot cut
    /// or edit a chain and have the next write sign over the damage. A head under a key the keyring no longer holds
    /// (a retired key) cannot be checked: the event written after it then says so, and `verifyAudit()` names it.
    /// No head: the chain's start.
    ///
    /// - Throws: `.authenticationFailed` when the head does not verify under a key the keyring holds; nothing is
    ///   written.
    func trustedHead(_ mark: StoredAuditMark?, chain: String) throws(VaultError) -> (AuditHead, KeyID?) {
        guard let mark else { return (.genesis, nil) }
        switch auditSigner.check(mark.mac, AuditSigner.headMessage(chain: chain, mark.head), keyID: mark.macKeyID) {
        case true?:
            return (mark.head, nil)
        case false?:
            throw VaultError(
                .authenticationFailed,
                "the head of the audit chain \(chain) (event \(mark.head.sequence)) does not verify under key "
                    + "\(mark.macKeyID): the audit trail was changed without the key, so nothing was written after "
                    + "it. verifyAudit() names the first broken link.")
        case nil:
            return (mark.head, mark.macKeyID)
        }
    }

    /// `draft`, noting the key of an unverifiable head it follows (see ``trustedHead(_:chain:)``).
    static func noting(_ unverified: KeyID?, _ draft: AuditDraft) -> AuditDraft {
        guard let unverified else { return draft }
        var noted = draft
        noted.details[AuditChain.unverifiedHeadDetail] = .string(unverified.rawValue)
        return noted
    }

    /// Single-statement attempts before an audited write takes its chain's lock instead: the first finds the
    /// chain where this process left it, the second where the database said it was.
    static let optimisticAttempts = 2

    /// Appends an event that records no change of its own (a read, a value that did not open), in a statement of
    /// its own.
    func appendAudit(_ draft: AuditDraft) async throws(VaultError) {
        if let row = AuditEvent.row(ofChain: draft.chain) {
            let appended = try await writeInOneStatement(draft, client: row.client, provider: row.provider) {
                (record) throws(VaultError) in try await repository.appendToRow(record) ? true : nil
            }
            if case .decided(true?) = appended { return }
        } else {
            var head = auditHeads.head(draft.chain) ?? .genesis
            var unverified: KeyID? = nil
            for _ in 0..<Self.optimisticAttempts {
                let record = auditRecord(Self.noting(unverified, draft), after: head)
                switch try await repository.appendAudit(record) {
                case .written:
                    auditHeads.set(draft.chain, record.head)
                    return
                case .headMoved(let current):
                    (head, unverified) = try trustedHead(current, chain: draft.chain)
                }
            }
        }
        try await auditedTransaction(chains: [draft.chain]) { (_) throws(VaultError) in ((), [draft]) }
    }

    /// Thrown inside an audited transaction when a chain that had no head got one meanwhile: the transaction is
    /// rolled back and run again.
    private static let chainCreatedMeanwhile = VaultError(.conflict, "an audit chain was created meanwhile")

    /// Runs `body` in an audited transaction when the audit is on; otherwise without a transaction (nil), its
    /// statements each on their own as before, and its events dropped. This is the hook every audited change
    /// goes through, revocation included: `audited(chains: [chain]) { … (done, [.row(.revoked, …)]) }`.
    func audited<T: Sendable>(
        chains: [String], _ body: (TokenTransaction?) async throws(VaultError) -> (T, [AuditDraft])
    ) async throws(VaultError) -> T {
        guard auditEnabled else { return try await body(nil).0 }
        return try await auditedTransaction(chains: chains) { (transaction) throws(VaultError) in
            try await body(transaction)
        }
    }

    /// Runs `body` in one transaction, with the heads of `chains` locked first (so that no other writer appends
    /// to them until it commits), then appends the events it returns: they commit with its changes or not at all.
    /// With the audit off, `body` runs in a transaction and its events are dropped.
    func auditedTransaction<T: Sendable>(
        chains: [String], _ body: (TokenTransaction) async throws(VaultError) -> (T, [AuditDraft])
    ) async throws(VaultError) -> T {
        guard auditEnabled else {
            return try await repository.withTransaction { (transaction) throws(VaultError) in
                try await body(transaction).0
            }
        }
        for attempt in 0..<5 {
            // Behind a pooler in transaction mode, a named statement can fail inside the transaction and the pool
            // switch to unnamed ones (see StatementMode): the transaction was rolled back; run it once more.
            let named = repository.pool.statements.usesNamedStatements
            do {
                let (value, written) = try await repository.withTransaction {
                    (transaction) throws(VaultError) -> (T, [(String, AuditHead)]) in
                    var heads: [String: AuditHead] = [:]
                    var unverified: [String: KeyID] = [:]
                    // A row chain's head as its row keeps it; nil when the row keeps none (or there is no row).
                    var rowSequences: [String: Int64] = [:]
                    for (chain, locked) in try await transaction.lockAuditHeads(chains) {
                        let (head, key) = try trustedHead(locked.mark, chain: chain)
                        heads[chain] = head
                        unverified[chain] = key
                        if locked.inRow { rowSequences[chain] = locked.mark.head.sequence }
                    }
                    let (value, bodyDrafts) = try await body(transaction)
                    // The first event after an unverifiable head says so; the ones after it follow a head this
                    // transaction wrote.
                    var drafts: [AuditDraft] = []
                    for draft in bodyDrafts {
                        drafts.append(Self.noting(unverified.removeValue(forKey: draft.chain), draft))
                    }
                    var written: [(String, AuditHead)] = []
                    let rowDrafts = drafts.filter { AuditEvent.row(ofChain: $0.chain) != nil }
                    if rowDrafts.count > 1, Set(rowDrafts.map(\.chain)).count == rowDrafts.count {
                        // Many rows at once (an import's, all written by `body`): a statement per thousand events.
                        let records = rowDrafts.map { auditRecord($0, after: heads[$0.chain] ?? .genesis) }
                        for start in stride(from: 0, to: records.count, by: 1000) {
                            let batch = Array(records[start..<min(start + 1000, records.count)])
                            guard
                                try await transaction.appendAudit(
                                    rowBatch: batch, rowSequences: batch.map { rowSequences[$0.event.chain] })
                            else { throw Self.chainCreatedMeanwhile }
                        }
                        written = records.map { ($0.event.chain, $0.head) }
                        drafts.removeAll { AuditEvent.row(ofChain: $0.chain) != nil }
                    }
                    for draft in drafts {
                        let record = auditRecord(draft, after: heads[draft.chain] ?? .genesis)
                        switch try await transaction.appendAudit(record, rowSequence: rowSequences[draft.chain]) {
                        case .inRow?: rowSequences[draft.chain] = record.head.sequence
                        case .inTable?: rowSequences[draft.chain] = nil
                        case nil: throw Self.chainCreatedMeanwhile
                        }
                        heads[draft.chain] = record.head
                        written.append((draft.chain, record.head))
                    }
                    return (value, written)
                }
                for (chain, head) in written { auditHeads.set(chain, head) }
                return value
            } catch  where error == Self.chainCreatedMeanwhile && attempt < 4 {
                continue
            } catch
                where named && !repository.pool.statements.usesNamedStatements
                && StatementMode.isPoolerSymptom(error.sqlState) && attempt < 4
            {
                continue
            } catch  where error.code == .connectionFailed && attempt == 0 {
                // A dropped connection, as the single statements without the audit are retried once: every caller's
                // change is a compare-and-set or an upsert, so a transaction that did commit changes nothing more
                // when run again (a refresh then finds its own tokens stored and keeps them).
                continue
            }
        }
        throw Self.auditContention(chains.joined(separator: ", "))
    }

    /// Runs `open` on `row`; when it fails, records a `decrypt_failed` event per failing field (best effort: a
    /// failure to record does not hide the error) and rethrows.
    func auditingOpen<T>(_ row: SealedRow, _ open: (SealedRow) throws(VaultError) -> T) async throws(VaultError) -> T {
        do {
            return try open(row)
        } catch {
            if auditEnabled {
                let failures = sealer.failures(opening: row)
                let fields =
                    failures.isEmpty ? [("row", error.code)] : failures.map { ($0.field.rawValue, $0.error.code) }
                for (field, code) in fields {
                    try? await appendAudit(
                        .row(
                            .decryptFailed, client: row.clientID, provider: row.provider, keyID: row.keyID,
                            outcome: "\(code)",
                            details: [
                                "field": .string(field),
                                "reason": .string(VerificationReport.Failure.reason(code)),
                            ]))
                }
            }
            throw error
        }
    }

    /// Records a `read` event when reads are audited.
    func auditRead(_ row: SealedRow, fields: String) async throws(VaultError) {
        guard auditEnabled, configuration.audit.auditReads else { return }
        try await appendAudit(
            .row(
                .read, client: row.clientID, provider: row.provider, keyID: row.keyID,
                details: ["fields": .string(fields)]))
    }
}
