/// What ``Vault/doctor()`` found: one finding per check, each with a severity.
public struct DoctorReport: Sendable, Codable {
    /// How serious a finding is.
    public enum Severity: String, Sendable, Codable, Comparable {
        /// Nothing to do.
        case ok
        /// Worth knowing; nothing to fix.
        case info
        /// Should be fixed: the vault works, but something is weaker than it should be.
        case warning
        /// Must be fixed: the vault cannot work, or something is broken.
        case error

        private var rank: Int { [.ok: 0, .info: 1, .warning: 2, .error: 3][self]! }
        public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }
    }

    /// One check's result.
    public struct Finding: Sendable, Codable, Equatable {
        /// The check, a stable name (`database`, `tls`, `schema`, `keys`, `rotation`, `retire`, `reauthorization`,
        /// `audit`, `server_logs`, `pooler`, …).
        public let check: String
        /// How serious it is.
        public let severity: Severity
        /// What was found and what fixes it; never a secret.
        public let message: String

        /// A finding.
        public init(check: String, severity: Severity, message: String) {
            self.check = check
            self.severity = severity
            self.message = message
        }
    }

    /// The findings, in the order the checks ran.
    public var findings: [Finding] = []

    /// The most serious finding's severity (`ok` when there is none).
    public var severity: Severity { findings.map(\.severity).max() ?? .ok }

    /// An empty report.
    public init() {}

    /// Adds a finding.
    public mutating func add(_ check: String, _ severity: Severity, _ message: String) {
        findings.append(Finding(check: check, severity: severity, message: message))
    }
}
