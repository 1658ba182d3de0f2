import Logging

/// What `Vault.verify()` found.
public struct VerificationReport: Sendable, Codable {
    /// One field of one row that failed to open.
    public struct Failure: Sendable, Codable, Equatable {
        public let clientID: String
        public let provider: String
        public let field: String
        public let keyID: KeyID
        /// `unknown key id`, `failed authentication` or `malformed`.
        public let reason: String
        public let message: String
    }

    /// Rows examined.
    public var rows = 0
    /// Rows per key id.
    public var rowsByKeyID: [String: Int] = [:]
    public var failures: [Failure] = []
    /// True when every row opened.
    public var ok: Bool { failures.isEmpty }

    enum CodingKeys: String, CodingKey {
        case rows, rowsByKeyID = "rows_by_key_id", failures, ok
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        rows = try container.decode(Int.self, forKey: .rows)
        rowsByKeyID = try container.decode([String: Int].self, forKey: .rowsByKeyID)
        failures = try container.decode([Failure].self, forKey: .failures)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(rows, forKey: .rows)
        try container.encode(rowsByKeyID, forKey: .rowsByKeyID)
        try container.encode(failures, forKey: .failures)
        try container.encode(ok, forKey: .ok)
    }
}

extension VerificationReport.Failure {
    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", provider, field, keyID = "key_id", reason, message
    }
}

extension Vault {
    /// Opens every secret of every row, in batches, and reports each that fails. Plaintext is wiped at once.
    public func verify(batchSize: Int = 500) async throws(VaultError) -> VerificationReport {
        var report = VerificationReport()
        try await forEachPage(batchSize: batchSize) { rows in
            for row in rows {
                report.rows += 1
                report.rowsByKeyID[row.keyID.rawValue, default: 0] += 1
                var fields: [(TokenField, SealedValue)] = [(.refreshToken, row.refreshToken)]
                if let access = row.accessToken { fields.insert((.accessToken, access), at: 0) }
                for (field, sealed) in fields {
                    do throws(VaultError) {
                        _ = try sealer.open(
                            sealed, keyID: row.keyID,
                            context: SealContext(field: field, provider: row.provider, clientID: row.clientID),
                            cached: false)
                    } catch {
                        report.failures.append(
                            .init(
                                clientID: row.clientID, provider: row.provider, field: field.rawValue,
                                keyID: row.keyID, reason: Self.reason(error.code), message: error.message))
                    }
                }
            }
        }
        let level: Logger.Level = report.ok ? .info : .error
        logger.log(
            level: level, "verified stored tokens",
            metadata: ["token_vault.rows": "\(report.rows)", "token_vault.failures": "\(report.failures.count)"])
        return report
    }

    static func reason(_ code: VaultError.Code) -> String {
        switch code {
        case .unknownKey: return "unknown key id"
        case .authenticationFailed: return "failed authentication"
        default: return "malformed"
        }
    }
}
