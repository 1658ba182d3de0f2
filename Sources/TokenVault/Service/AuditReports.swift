import Foundation

/// Which audit events ``Vault/auditEvents(_:)`` returns.
public struct AuditFilter: Sendable {
    /// Only this client's events.
    public var client: String?
    /// Only this provider's events.
    public var provider: String?
    /// Only events made at or after this time.
    public var since: Date?

    /// Every event, or those of a client, a provider, since a time.
    public init(client: String? = nil, provider: String? = nil, since: Date? = nil) {
        self.client = client
        self.provider = provider
        self.since = since
    }
}

/// What ``Vault/verifyAudit()`` found: every chain of the audit trail checked against the keyring.
public struct AuditVerificationReport: Sendable, Codable {
    /// The first broken link of a chain.
    public struct Problem: Sendable, Codable, Equatable, CustomStringConvertible {
        /// The chain (`vault`, or `row:…`).
        public let chain: String
        /// The sequence number of the first event that does not verify (or that is missing); nil when the chain
        /// as a whole is at fault (its head or anchor is missing).
        public let sequence: Int64?
        /// What is wrong, in words.
        public let reason: String

        public var description: String {
            "chain \(chain)" + (sequence.map { ", event \($0)" } ?? "") + ": \(reason)"
        }
    }

    /// Chains checked.
    public var chains = 0
    /// Events checked.
    public var events = 0
    /// Events authenticated under a key that is not in the keyring and not covered by a later event or head that
    /// is: their integrity could not be checked. Keep a retired key among the previous keys for as long as its
    /// events are kept (docs/audit.md).
    public var unauthenticated = 0
    /// Rows of `oauth_tokens` with no audit chain: stored while the audit was off (or before it existed), or
    /// their chain was deleted along with its head.
    public var rowsWithoutChain = 0
    /// The first broken link of each chain that has one, in chain order.
    public var problems: [Problem] = []

    /// Whether every chain verified and every event was authenticated (none under a key missing from the
    /// keyring).
    public var ok: Bool { problems.isEmpty && unauthenticated == 0 }

    /// An empty report.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case chains, events, unauthenticated, problems
        case rowsWithoutChain = "rows_without_chain"
    }
}

/// What ``Vault/pruneAudit(before:)`` did.
public struct AuditPruneReport: Sendable, Codable {
    /// Chains whose oldest events were removed.
    public var chains = 0
    /// Events removed.
    public var events = 0
    /// Chains left as they were because they do not verify: pruning must not hide tampering.
    public var refused: [AuditVerificationReport.Problem] = []

    /// An empty report.
    public init() {}
}
