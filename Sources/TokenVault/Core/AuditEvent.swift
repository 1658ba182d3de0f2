import Foundation

/// One entry of the audit trail in `token_vault_audit_events`: what happened to which credential, when, under
/// which key, and which process did it. Holds no secret.
///
/// Events form chains: every row (client, provider) has its own chain (`row:…`), and events about the vault as a
/// whole (rotation batches, verify runs, prunes) form the chain `vault`. Each event is authenticated with a MAC
/// under a key derived from the vault key and linked to the one before it in its chain (docs/audit.md), so
/// ``Vault/verifyAudit()`` finds an event that was edited, deleted, reordered or forged in the database.
public struct AuditEvent: Sendable, Equatable {
    /// What happened.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        /// The name stored in the `kind` column.
        public let rawValue: String
        /// A kind by its stored name.
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Tokens were stored (``Vault/store(_:client:provider:)``, `put`, `import`).
        public static let stored = Kind(rawValue: "stored")
        /// Tokens obtained by exchanging an authorization code were stored.
        public static let exchanged = Kind(rawValue: "exchanged")
        /// An account was connected through an authorization flow (state and PKCE checked) and its tokens stored.
        public static let authorized = Kind(rawValue: "authorized")
        /// A refresh stored new tokens.
        public static let refreshed = Kind(rawValue: "refreshed")
        /// A refresh failed; `details` holds the error code and the provider's error code.
        public static let refreshFailed = Kind(rawValue: "refresh_failed")
        /// The provider refused the refresh token: the account must be authorized again.
        public static let needsReauthorization = Kind(rawValue: "needs_reauthorization")
        /// An access token was reported rejected by an API (``Vault/accessToken(client:provider:replacing:)``).
        public static let invalidated = Kind(rawValue: "invalidated")
        /// The tokens were revoked at the provider.
        public static let revoked = Kind(rawValue: "revoked")
        /// The tokens were deleted.
        public static let deleted = Kind(rawValue: "deleted")
        /// A batch of a key rotation re-sealed rows (chain `vault`; `details`: rows and key ids).
        public static let resealed = Kind(rawValue: "resealed")
        /// A verify run finished (chain `vault`; `details`: rows checked and failures).
        public static let verified = Kind(rawValue: "verify_run")
        /// A stored value failed to open (`details`: field and reason).
        public static let decryptFailed = Kind(rawValue: "decrypt_failed")
        /// A token was read (only with ``VaultConfiguration/AuditSettings/auditReads``).
        public static let read = Kind(rawValue: "read")
        /// Old events were pruned (chain `vault`; `details`: the cut-off and the events removed).
        public static let pruned = Kind(rawValue: "pruned")
    }

    /// The chain the event belongs to: `vault`, or `row:` followed by the row's client id and provider.
    public let chain: String
    /// The event's position in its chain, from 1.
    public let sequence: Int64
    /// When the event was made, by the clock of the process that made it (microsecond precision).
    public let time: Date
    /// What happened.
    public let kind: Kind
    /// The row's client id; nil for events of the chain `vault`.
    public let clientID: String?
    /// The row's provider; nil for events of the chain `vault`.
    public let provider: String?
    /// The key that sealed the row's tokens, when the event concerns sealed tokens.
    public let keyID: KeyID?
    /// How it ended: `ok`, or an error code.
    public let outcome: String
    /// Which process did it.
    public let actor: AuditActor
    /// A JSON object with the event's details (counts, error codes, fields); never a secret.
    public let detailsJSON: String
    /// The key whose audit subkey authenticated the event.
    public let macKeyID: KeyID

    /// An event as read back or built for writing; `microseconds` since 1970 is its time, as authenticated.
    package init(
        chain: String, sequence: Int64, microseconds: Int64, kind: Kind, clientID: String?, provider: String?,
        keyID: KeyID?, outcome: String, actor: AuditActor, detailsJSON: String, macKeyID: KeyID
    ) {
        self.chain = chain
        self.sequence = sequence
        self.microseconds = microseconds
        self.time = Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
        self.kind = kind
        self.clientID = clientID
        self.provider = provider
        self.keyID = keyID
        self.outcome = outcome
        self.actor = actor
        self.detailsJSON = detailsJSON
        self.macKeyID = macKeyID
    }

    /// The chain of the row (client, provider): `row:` + the client id's length in UTF-8 bytes + `:` + client id
    /// + `/` + provider, so that no two rows share a chain whatever their ids contain.
    public static func chain(client: String, provider: String) -> String {
        "row:\(client.utf8.count):\(client)/\(provider)"
    }

    /// The row (client, provider) whose chain `chain` is (``chain(client:provider:)``); nil for any other chain.
    package static func row(ofChain chain: String) -> (client: String, provider: String)? {
        let bytes = Array(chain.utf8)
        let prefix = Array("row:".utf8)
        guard bytes.starts(with: prefix), let colon = bytes[prefix.count...].firstIndex(of: UInt8(ascii: ":")),
            colon - prefix.count <= 10,
            let length = Int(String(decoding: bytes[prefix.count..<colon], as: UTF8.self)),
            length >= 0, colon + 1 + length < bytes.count, bytes[colon + 1 + length] == UInt8(ascii: "/")
        else { return nil }
        let client = String(decoding: bytes[(colon + 1)..<(colon + 1 + length)], as: UTF8.self)
        let provider = String(decoding: bytes[(colon + 2 + length)...], as: UTF8.self)
        guard Self.chain(client: client, provider: provider) == chain else { return nil }
        return (client, provider)
    }

    /// The chain of events about the vault as a whole.
    public static let vaultChain = "vault"

    /// Microseconds since 1970, as stored and authenticated.
    package let microseconds: Int64

    /// Now, in microseconds since 1970.
    package static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1_000_000).rounded()) }
}

/// The process that made an audit event.
public struct AuditActor: Sendable, Equatable {
    /// The application's name (``VaultConfiguration/AuditSettings/applicationName``, by default the process name).
    public let application: String
    /// The host name.
    public let host: String
    /// The process id.
    public let pid: Int32
    /// A name for who acts, from configuration (`TOKEN_VAULT_AUDIT_ACTOR`), such as an operator or a job.
    public let name: String?

    /// An actor as configured or read back.
    public init(application: String, host: String, pid: Int32, name: String?) {
        self.application = application
        self.host = host
        self.pid = pid
        self.name = name
    }
}
