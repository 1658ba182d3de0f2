import Logging

extension Vault {
    /// Opens every secret of every row, in batches of `batchSize`, and reports each that fails. Plaintext is
    /// wiped at once. A field that fails to open is a finding in the report, not a thrown error.
    /// - Throws: `.invalidInput` when `batchSize` is below 1.
    public func verify(batchSize: Int = 500) async throws(VaultError) -> VerificationReport {
        guard batchSize > 0 else { throw VaultError(.invalidInput, "the batch size must be at least 1.") }
        var report = VerificationReport()
        try await forEachPage(batchSize: batchSize) { rows in
            for row in rows {
                report.rows += 1
                report.rowsByKeyID[row.keyID.rawValue, default: 0] += 1
                for failure in sealer.failures(opening: row) {
                    metrics.openFailure(field: failure.field.rawValue, reason: "\(failure.error.code)")
                    report.failures.append(
                        .init(
                            clientID: row.clientID, provider: row.provider, field: failure.field.rawValue,
                            keyID: row.keyID, reason: VerificationReport.Failure.reason(failure.error.code),
                            message: failure.error.message))
                }
            }
        }
        for (keyID, count) in report.rowsByKeyID { metrics.rows(keyID: keyID, count: count) }
        if auditEnabled {
            // At most 1,000 failures get an event of their own; the run's event counts them all.
            for failure in report.failures.prefix(1000) {
                try await appendAudit(
                    .row(
                        .decryptFailed, client: failure.clientID, provider: failure.provider, keyID: failure.keyID,
                        outcome: "failed",
                        details: ["field": .string(failure.field), "reason": .string(failure.reason)]))
            }
            try await appendAudit(
                .vault(
                    .verified, outcome: report.ok ? "ok" : "failed",
                    details: [
                        "rows": .number(Double(report.rows)), "failures": .number(Double(report.failures.count)),
                        "rows_by_key_id": .object(report.rowsByKeyID.mapValues { .number(Double($0)) }),
                    ]))
        }
        let level: Logger.Level = report.ok ? .info : .error
        logger.log(
            level: level, "verified stored tokens",
            metadata: [LogKey.rows: "\(report.rows)", LogKey.failures: "\(report.failures.count)"])
        return report
    }
}
