/// What ``Vault/verify(batchSize:)`` found: which stored secrets the keyring can no longer open.
public struct VerificationReport: Sendable, Codable {
    /// One field of one row that failed to open.
    public struct Failure: Sendable, Codable, Equatable {
        /// The row's client id.
        public let clientID: String
        /// The row's provider.
        public let provider: String
        /// `access_token` or `refresh_token`.
        public let field: String
        /// The key id the row names.
        public let keyID: KeyID
        /// `unknown key id`, `failed authentication` or `malformed`.
        public let reason: String
        /// The error's message: what is wrong with the field, without any secret.
        public let message: String
    }

    /// Rows examined.
    public internal(set) var rows = 0
    /// Rows per key id.
    public internal(set) var rowsByKeyID: [String: Int] = [:]
    /// Every field that failed to open, in table order.
    public internal(set) var failures: [Failure] = []
    /// True when every row opened.
    public var ok: Bool { failures.isEmpty }

    enum CodingKeys: String, CodingKey {
        case rows, rowsByKeyID = "rows_by_key_id", failures, ok
    }

    init() {}

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
    /// The `reason` recorded for an error that opening a field threw.
    static func reason(_ code: VaultError.Code) -> String {
        switch code {
        case .unknownKey: return "unknown key id"
        case .authenticationFailed: return "failed authentication"
        default: return "malformed"
        }
    }

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", provider, field, keyID = "key_id", reason, message
    }
}
