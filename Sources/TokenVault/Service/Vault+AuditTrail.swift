import Foundation
import Logging

extension Vault {
    /// The audit events `filter` selects, oldest first, handed to `body` a page of up to `pageSize` at a time.
    /// Reading does not check the chains: ``verifyAudit()`` does.
    /// - Throws: `.invalidInput` when `pageSize` is less than 1.
    public func auditEvents(
        _ filter: AuditFilter = AuditFilter(), pageSize: Int = 1000, _ body: ([AuditEvent]) -> Void
    ) async throws(VaultError) {
        guard pageSize > 0 else { throw VaultError(.invalidInput, "the page size must be at least 1.") }
        let query = AuditQuery(
            client: filter.client, provider: filter.provider,
            since: filter.since.map { Int64(($0.timeIntervalSince1970 * 1_000_000).rounded()) })
        var cursor: (micros: Int64, chain: String, sequence: Int64)? = nil
        while true {
            let page = try await repository.auditEvents(query, after: cursor, limit: pageSize)
            if !page.isEmpty { body(page.map(\.event)) }
            guard let last = page.last?.event, page.count == pageSize else { return }
            cursor = (last.microseconds, last.chain, last.sequence)
        }
    }

    /// The audit events `filter` selects, oldest first (see ``auditEvents(_:pageSize:_:)`` for a large trail).
    public func auditEvents(_ filter: AuditFilter = AuditFilter()) async throws(VaultError) -> [AuditEvent] {
        var events: [AuditEvent] = []
        try await auditEvents(filter, pageSize: 1000) { events.append(contentsOf: $0) }
        return events
    }

    /// Checks every chain of the audit trail: each event's MAC under the keyring, the sequence without gaps, each
    /// chain against its authenticated head and prune anchor. Names the first broken link of each chain. Someone
    /// who can write to the database but has no key cannot edit, delete, reorder or forge an event, or cut a
    /// chain's tail, without it being named here (docs/audit.md says what it cannot see).
    public func verifyAudit() async throws(VaultError) -> AuditVerificationReport {
        var report = AuditVerificationReport()
        try await walkAudit(pruneBefore: nil) { check in
            report.chains += 1
            report.events += check.events
            report.unauthenticated += check.unauthenticated
            if let problem = check.problem { report.problems.append(problem) }
        }
        report.rowsWithoutChain = try await repository.rowsWithoutAuditChain()
        report.problems.sort { ($0.chain, $0.sequence ?? 0) < ($1.chain, $1.sequence ?? 0) }
        logger.log(
            level: report.ok ? .info : .error, "verified the audit trail",
            metadata: [
                LogKey.rows: "\(report.events)", LogKey.failures: "\(report.problems.count)",
            ])
        return report
    }

    /// Walks every chain in order, calling `body` with each one's finished check.
    private func walkAudit(
        pruneBefore cutoff: Int64?, _ body: (AuditChainCheck) async throws(VaultError) -> Void
    ) async throws(VaultError) {
        var heads: [String: StoredAuditMark] = [:]
        var anchors: [String: StoredAuditMark] = [:]
        var current: AuditChainCheck?
        func finish(_ check: inout AuditChainCheck) {
            check.finish(head: heads.removeValue(forKey: check.chain))
        }
        try await repository.readAuditTrail(pageSize: 1000) {
            heads = $0; anchors = $1
        } page: {
            (page) throws(VaultError) in
            for stored in page {
                if current?.chain != stored.event.chain {
                    if var done = current {
                        finish(&done)
                        try await body(done)
                    }
                    let chain = stored.event.chain
                    current = AuditChainCheck(
                        chain: chain, anchor: anchors.removeValue(forKey: chain), signer: auditSigner,
                        pruneBefore: cutoff)
                }
                current!.add(stored)
            }
        }
        if var done = current {
            finish(&done)
            try await body(done)
        }
        // Chains with a head but no event left: pruned to the end, or every event deleted.
        for (chain, head) in heads.sorted(by: { $0.key < $1.key }) {
            var check = AuditChainCheck(
                chain: chain, anchor: anchors.removeValue(forKey: chain), signer: auditSigner, pruneBefore: cutoff)
            check.finish(head: head)
            try await body(check)
        }
        for (chain, anchor) in anchors.sorted(by: { $0.key < $1.key }) {
            var check = AuditChainCheck(chain: chain, anchor: anchor, signer: auditSigner, pruneBefore: cutoff)
            check.finish(head: nil)
            try await body(check)
        }
    }

    /// Removes the audit events made before `cutoff`, chain by chain, keeping every chain verifiable: each pruned
    /// chain gets an authenticated anchor (the sequence and digest of its last removed event) from which
    /// ``verifyAudit()`` continues. Only a chain's oldest events go: an event is kept if an event before it in
    /// its chain is kept. A chain that does not verify is left whole and reported. The prune itself is recorded
    /// as a `pruned` event of the chain `vault`.
    ///
    /// Under the role layout of docs/audit.md, the application's role cannot delete events: run it as the
    /// owner's role (`token-vault audit prune`).
    public func pruneAudit(before cutoff: Date) async throws(VaultError) -> AuditPruneReport {
        let micros = Int64((cutoff.timeIntervalSince1970 * 1_000_000).rounded())
        var report = AuditPruneReport()
        var marks: [(chain: String, mark: StoredAuditMark, previous: Int64?)] = []
        try await walkAudit(pruneBefore: micros) { check in
            if let problem = check.problem {
                report.refused.append(problem)
                return
            }
            guard let prunable = check.prunable else { return }
            let mac = auditSigner.mac(
                AuditSigner.anchorMessage(chain: check.chain, prunable), keyID: auditSigner.currentKeyID)!
            marks.append(
                (
                    check.chain, StoredAuditMark(head: prunable, macKeyID: auditSigner.currentKeyID, mac: mac),
                    check.anchor?.head.sequence
                ))
        }
        // A statement per batch of chains, each one scan of the events.
        for start in stride(from: 0, to: marks.count, by: 5000) {
            let batch = marks[start..<min(start + 5000, marks.count)]
            let removed = try await auditedTransaction(chains: [AuditEvent.vaultChain]) {
                (transaction) throws(VaultError) in
                let (chains, removed) = try await transaction.prune(batch)
                let event = AuditDraft.vault(
                    .pruned,
                    details: [
                        "before": .string(ISO8601DateFormatter().string(from: cutoff)),
                        "chains": .number(Double(chains)), "events": .number(Double(removed)),
                    ])
                return ((removed, chains), [event])
            }
            report.events += removed.0
            report.chains += removed.1
        }
        logger.notice(
            "pruned the audit trail",
            metadata: [LogKey.rows: "\(report.events)", LogKey.failures: "\(report.refused.count)"])
        return report
    }
}

extension Vault {
    /// Grants the application's database role `role` what the vault needs and no more on the audit trail: it may
    /// append events and move chain heads, but not change or delete an event or a prune anchor (docs/audit.md,
    /// "Grants"). Run it as the tables' owner after ``migrate()``; the application then connects as `role`.
    /// Returns the SQL it ran, for the record.
    /// - Throws: `.invalidInput` when `role` is not 1 to 63 bytes of printable text; `.database` when the server
    ///   refuses (the role does not exist, or this role does not own the tables).
    @discardableResult
    public func grantAccess(toApplicationRole role: String) async throws(VaultError) -> String {
        guard !role.isEmpty, role.utf8.count <= 63, !role.utf8.contains(where: { $0 < 0x20 }) else {
            throw VaultError(.invalidInput, "the role name must be 1 to 63 bytes of printable text.")
        }
        let sql = try await repository.grant(to: role)
        logger.notice("granted the application role its rights", metadata: [LogKey.role: "\(role)"])
        return sql
    }
}
