import Foundation
import Logging

/// Re-seals every row that is not under the current key, online and resumably (``Vault/rotateKeys(batchSize:dryRun:progress:shouldStop:)``).
struct KeyRotation {
    let repository: TokenRepository
    let sealer: Sealer
    let logging: ContextLogger
    var logger: Logger { logging.current }
    /// Writes a batch of re-sealed rows (given the rows re-sealed, the new key id, and how many of them were under
    /// each old key); by default ``TokenRepository/reseal(_:keyID:in:)``. The vault passes one that records the
    /// batch in the audit trail in the same transaction.
    var writeBatch: (@Sendable ([SealedRow], KeyID, [KeyID: Int]) async throws(VaultError) -> Set<RowKey>)? = nil

    func run(
        batchSize: Int, dryRun: Bool, progress: @Sendable (RotationProgress) -> Void, shouldStop: @Sendable () -> Bool
    ) async throws(VaultError) -> RotationReport {
        let started = Date()
        let current = sealer.keyring.current.id
        var report = RotationReport(currentKeyID: current)
        report.dryRun = dryRun
        let counts = try await repository.countByKeyID()
        report.rowsByKeyIDBefore = Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) })
        let unknown = counts.filter { sealer.keyring.key(for: $0.key) == nil }.sorted { $0.key < $1.key }
        guard unknown.isEmpty else {
            let list = unknown.map { "\($0.value) row\($0.value == 1 ? "" : "s") under key \($0.key)" }
                .joined(separator: ", ")
            throw VaultError(
                .unknownKey,
                "\(list): that key is neither the current key nor among the previous keys, so those rows "
                    + "cannot be re-sealed. Nothing was changed. Add that key to the keyring's previous keys (or delete "
                    + "those rows) and run the rotation again.")
        }
        report.toReseal = counts.filter { $0.key != current }.reduce(0) { $0 + $1.value }
        logger.notice(
            "key rotation starting",
            metadata: [
                LogKey.keyID: "\(current)", LogKey.rows: "\(report.toReseal)",
                LogKey.dryRun: "\(dryRun)",
            ])
        if dryRun {
            report.remaining = report.toReseal
            report.seconds = Date().timeIntervalSince(started)
            return report
        }
        // The next page is read on a second connection while the current one is re-sealed and written.
        var page = try await repository.page(notUnder: current, after: nil, limit: batchSize)
        while let last = page.last {
            let more = page.count == batchSize
            let cursor = (client: last.clientID, provider: last.provider)
            let repository = self.repository
            async let next: [SealedRow] =
                more ? repository.page(notUnder: current, after: cursor, limit: batchSize) : []
            try await resealBatch(page, report: &report)
            progress(
                RotationProgress(
                    done: report.resealed + report.changedMeanwhile + report.failures.count, total: report.toReseal,
                    elapsed: Date().timeIntervalSince(started)))
            do {
                page = try await next
            } catch let error as VaultError {
                throw error
            } catch {
                throw VaultError(.database, "reading the next batch failed (\(type(of: error))).", underlying: error)
            }
            if !page.isEmpty && shouldStop() {
                report.interrupted = true
                break
            }
        }
        let after = try await repository.countByKeyID()
        report.remaining = after.filter { $0.key != current }.reduce(0) { $0 + $1.value }
        report.seconds = Date().timeIntervalSince(started)
        logger.notice(
            "key rotation \(report.interrupted ? "interrupted" : "finished")",
            metadata: [
                LogKey.keyID: "\(current)", LogKey.resealed: "\(report.resealed)",
                LogKey.remaining: "\(report.remaining)", LogKey.failures: "\(report.failures.count)",
            ])
        return report
    }

    /// Re-seals one batch; rows whose compare-and-set is lost are re-read and tried again (a few rounds).
    func resealBatch(_ rows: [SealedRow], report: inout RotationReport) async throws(VaultError) {
        let current = sealer.keyring.current
        var pending = rows
        for _ in 0..<5 where !pending.isEmpty {
            let (resealed, alreadyCurrent, failures) = sealer.resealRows(pending)
            report.changedMeanwhile += alreadyCurrent
            for (row, failure) in failures {
                report.failures.append(
                    .init(
                        clientID: row.clientID, provider: row.provider, field: failure.field.rawValue,
                        keyID: row.keyID, reason: VerificationReport.Failure.reason(failure.error.code),
                        message: failure.error.message))
            }
            guard !resealed.isEmpty else { return }
            let resealedKeys = Set(resealed.map { RowKey(client: $0.clientID, provider: $0.provider) })
            var from: [KeyID: Int] = [:]
            for row in pending where resealedKeys.contains(RowKey(client: row.clientID, provider: row.provider)) {
                from[row.keyID, default: 0] += 1
            }
            let written =
                if let writeBatch {
                    try await writeBatch(resealed, current.id, from)
                } else {
                    try await repository.reseal(resealed, keyID: current.id)
                }
            report.resealed += written.count
            let lost = resealed.filter { !written.contains(RowKey(client: $0.clientID, provider: $0.provider)) }
            guard !lost.isEmpty else { return }
            // Changed since we read them (a refresh, a put, a delete): read them again.
            pending = try await repository.rows(lost.map { ($0.clientID, $0.provider) })
        }
        if !pending.isEmpty {
            throw VaultError(
                .conflict,
                "\(pending.count) rows kept changing while being re-sealed; run the rotation again to finish them.")
        }
    }
}
