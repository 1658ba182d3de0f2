import Foundation
import Synchronization

/// The last head this process wrote or saw for each chain, so that an audited store needs no read first: it
/// seals its event after the cached head, and a statement that finds the chain moved (another process wrote it)
/// returns the head and is sealed again. Bounded: emptied when full.
final class AuditHeadCache: Sendable {
    private let heads = Mutex<[String: AuditHead]>([:])
    static let capacity = 16_384

    func head(_ chain: String) -> AuditHead? { heads.withLock { $0[chain] } }

    func set(_ chain: String, _ head: AuditHead) {
        heads.withLock { heads in
            if heads.count >= Self.capacity { heads.removeAll(keepingCapacity: true) }
            heads[chain] = head
        }
    }
}

/// An event to write, before its chain position and MAC are known.
struct AuditDraft: Sendable {
    var chain: String
    var kind: AuditEvent.Kind
    var client: String?
    var provider: String?
    var keyID: KeyID?
    var outcome = "ok"
    var details: [String: JSONValue] = [:]

    /// An event of the row (client, provider)'s chain.
    static func row(
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
    func auditRecord(_ draft: AuditDraft, after head: AuditHead) -> AuditRecord {
        let event = AuditEvent(
            chain: draft.chain, sequence: head.sequence + 1, microseconds: AuditEvent.now(), kind: draft.kind,
            clientID: draft.client, provider: draft.provider, keyID: draft.keyID, outcome: draft.outcome,
            actor: auditActor, detailsJSON: JSONValue.serialize(draft.details), macKeyID: auditSigner.currentKeyID)
        return auditSigner.append(event, after: head)
    }

    /// The chain moved under every attempt: many processes are writing the same row at once.
    static func auditContention(_ chain: String) -> VaultError {
        VaultError(
            .conflict,
            "the audit chain \(chain) changed under every attempt to append to it (others are writing the same row "
                + "at once); nothing was written. Try again.")
    }

    /// Writes `row` and its event in one statement (see ``TokenRepository/upsertAudited``); returns the row's
    /// version.
    func storeAudited(_ row: SealedRow, _ draft: AuditDraft) async throws(VaultError) -> Int64 {
        var head = auditHeads.head(draft.chain) ?? .genesis
        for _ in 0..<Self.optimisticAttempts {
            let record = auditRecord(draft, after: head)
            switch try await repository.upsertAudited(row, record: record) {
            case .written(let version):
                auditHeads.set(draft.chain, record.head)
                return version
            case .headMoved(let current):
                head = current ?? .genesis
            }
        }
        // Others keep writing this row: take its chain's lock, which always succeeds, at the cost of a transaction.
        return try await auditedTransaction(chains: [draft.chain]) { (transaction) throws(VaultError) in
            (try await repository.upsert(row, in: transaction), [draft])
        }
    }

    /// Single-statement attempts before an audited write takes its chain's lock instead: the first finds the
    /// chain where this process left it, the second where the database said it was.
    static let optimisticAttempts = 2

    /// Appends an event that records no change of its own (a read, a value that did not open), in a statement of
    /// its own.
    func appendAudit(_ draft: AuditDraft) async throws(VaultError) {
        var head = auditHeads.head(draft.chain) ?? .genesis
        for _ in 0..<Self.optimisticAttempts {
            let record = auditRecord(draft, after: head)
            switch try await repository.appendAudit(record) {
            case .written:
                auditHeads.set(draft.chain, record.head)
                return
            case .headMoved(let current):
                head = current ?? .genesis
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
                    var heads = try await transaction.lockAuditHeads(chains)
                    let (value, drafts) = try await body(transaction)
                    var written: [(String, AuditHead)] = []
                    if drafts.count > 1, Set(drafts.map(\.chain)).count == drafts.count {
                        // Many chains at once (an import's rows): a statement per thousand events.
                        let records = drafts.map { auditRecord($0, after: heads[$0.chain] ?? .genesis) }
                        for start in stride(from: 0, to: records.count, by: 1000) {
                            let batch = Array(records[start..<min(start + 1000, records.count)])
                            guard try await transaction.appendAudit(batch: batch) else {
                                throw Self.chainCreatedMeanwhile
                            }
                        }
                        return (value, records.map { ($0.event.chain, $0.head) })
                    }
                    for draft in drafts {
                        let record = auditRecord(draft, after: heads[draft.chain] ?? .genesis)
                        guard try await transaction.appendAudit(record) else { throw Self.chainCreatedMeanwhile }
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
