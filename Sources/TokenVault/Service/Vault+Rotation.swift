import Foundation

extension Vault {
    /// Re-seals every row that is not under the current key, online and resumably.
    ///
    /// Walks the table in (client_id, provider) order in batches of `batchSize`, holding one batch in memory.
    /// Each batch is one statement that writes a row only if its version is unchanged, so a row that a service
    /// refreshed or replaced meanwhile is re-read, never overwritten. Each row flips from old key to new key
    /// atomically (ciphertexts, nonces and key id in one update), so the run can be killed at any moment and
    /// simply run again; rows already under the current key are not touched.
    ///
    /// - Parameters:
    ///   - batchSize: rows per statement, and the most held in memory.
    ///   - dryRun: only count what would be re-sealed; nothing is written.
    ///   - progress: called after every batch.
    ///   - shouldStop: checked after every batch while rows remain; return true to stop cleanly (the report says
    ///     ``RotationReport/interrupted``).
    /// - Throws: `.unknownKey`, before changing anything, when rows are sealed under a key that is in neither
    ///   the current nor the previous keys; `.invalidInput` when `batchSize` is less than 1; `.conflict` when
    ///   rows kept changing while being re-sealed (run it again).
    public func rotateKeys(
        batchSize: Int = 2000, dryRun: Bool = false,
        progress: @Sendable (RotationProgress) -> Void = { _ in },
        shouldStop: @Sendable () -> Bool = { false }
    ) async throws(VaultError) -> RotationReport {
        guard batchSize > 0 else { throw VaultError(.invalidInput, "the batch size must be at least 1.") }
        var rotation = KeyRotation(repository: repository, sealer: sealer, logging: logging)
        if auditEnabled {
            rotation.writeBatch = { [self] (rows, keyID, from) throws(VaultError) in
                try await auditedTransaction(chains: [AuditEvent.vaultChain]) { (transaction) throws(VaultError) in
                    let written = try await repository.reseal(rows, keyID: keyID, in: transaction)
                    let event = AuditDraft.vault(
                        .resealed, keyID: keyID,
                        details: [
                            "rows": .number(Double(written.count)), "attempted": .number(Double(rows.count)),
                            "from_key_ids": .object(
                                Dictionary(
                                    uniqueKeysWithValues: from.map { ($0.key.rawValue, .number(Double($0.value))) })),
                        ])
                    return (written, written.isEmpty ? [] : [event])
                }
            }
        }
        return try await rotation.run(batchSize: batchSize, dryRun: dryRun, progress: progress, shouldStop: shouldStop)
    }
}
