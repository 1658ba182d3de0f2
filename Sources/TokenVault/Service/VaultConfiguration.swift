import CoreMetrics
import Foundation
import Tracing

/// How a ``Vault`` connects, which keys it uses, and which token endpoints it refreshes at.
///
/// Prints without the database URL or any key.
public struct VaultConfiguration: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Environment variables read by ``fromEnvironment(_:)``.
    public enum Variable {
        /// `DATABASE_URL`: the database connection string; optional (libpq's `PG*` variables apply without it).
        public static let databaseURL = "DATABASE_URL"
        /// `TOKEN_VAULT_POOL_SIZE`: the most connections to open, 1 to 1000; default 4.
        public static let poolSize = "TOKEN_VAULT_POOL_SIZE"
        /// `TOKEN_VAULT_REFRESH_MARGIN`: seconds before expiry at which an access token is refreshed; default 300.
        public static let refreshMargin = "TOKEN_VAULT_REFRESH_MARGIN"
        /// `TOKEN_VAULT_POOL_TIMEOUT`: seconds a call waits for a database connection to come free; default 60.
        public static let poolTimeout = "TOKEN_VAULT_POOL_TIMEOUT"
        /// `TOKEN_VAULT_STATEMENT_TIMEOUT`: seconds a statement waits for the database's answer; default 30.
        public static let statementTimeout = "TOKEN_VAULT_STATEMENT_TIMEOUT"
        /// `TOKEN_VAULT_PREPARED_STATEMENTS`: `off` behind a connection pooler in transaction mode (PgBouncer,
        /// RDS Proxy), `on` (the default) otherwise; sets ``VaultConfiguration/preparedStatements``.
        public static let preparedStatements = "TOKEN_VAULT_PREPARED_STATEMENTS"
        /// `TOKEN_VAULT_SCHEMA`: the PostgreSQL schema of the vault's tables (lower-case letters, digits and
        /// underscores); sets ``VaultConfiguration/schema``. Default: the connection's `search_path`.
        public static let schema = "TOKEN_VAULT_SCHEMA"
        /// `TOKEN_VAULT_PROVIDERS_FILE`: a JSON file of further OAuth providers (any RFC 6749 provider, such as
        /// Google or Microsoft); see ``OAuthProvider/fromProvidersFile(_:environment:variable:)``.
        public static let providersFile = "TOKEN_VAULT_PROVIDERS_FILE"
        /// `TOKEN_VAULT_AUDIT`: `on` (the default) or `off`; sets ``VaultConfiguration/AuditSettings/enabled``.
        public static let audit = "TOKEN_VAULT_AUDIT"
        /// `TOKEN_VAULT_AUDIT_READS`: `on` or `off` (the default); sets
        /// ``VaultConfiguration/AuditSettings/auditReads``.
        public static let auditReads = "TOKEN_VAULT_AUDIT_READS"
        /// `TOKEN_VAULT_AUDIT_ACTOR`: who acts, recorded with every audit event (an operator, a job); optional.
        public static let auditActor = "TOKEN_VAULT_AUDIT_ACTOR"
    }

    /// What the audit trail records (docs/audit.md).
    public struct AuditSettings: Sendable {
        /// Whether every change (store, refresh, failure, delete, rotation batch, verify run, a value that did not
        /// open) writes an audit event in the same transaction. On by default: an audit trail that must be
        /// switched on is missing when it is needed. Off, the vault writes no event and needs no audit table.
        public var enabled = true
        /// Whether reading a token (``Vault/fetch(client:provider:)``, ``Vault/accessToken(client:provider:)``)
        /// writes a `read` event too. Off by default: it adds a write to every read (see docs/performance.md).
        public var auditReads = false
        /// Who acts, recorded with every event (an operator's name, a job's); nil records none.
        public var actor: String?
        /// The application's name recorded with every event; by default the process's name.
        public var applicationName = ProcessInfo.processInfo.processName

        /// The defaults: changes audited, reads not, no actor name.
        public init(enabled: Bool = true, auditReads: Bool = false, actor: String? = nil) {
            self.enabled = enabled
            self.auditReads = auditReads
            self.actor = actor
        }
    }

    /// A `postgresql://` URL or libpq `key=value` conninfo. Empty: libpq's `PG*` variables and defaults.
    /// May contain a password: it is never printed or logged.
    public var databaseURL: String
    /// The keys that seal and open the tokens.
    public var keyring: Keyring
    /// The most connections the vault opens at once.
    public var maximumConnections: Int
    /// How long a call waits for one of those connections to come free before it fails with `.timedOut`
    /// (default 60 seconds). No call holds a connection for longer than its statements take: a refresh holds none
    /// while the provider answers.
    public var connectionWaitTimeout: TimeInterval = 60
    /// How long each statement waits for the database's answer before the call fails with `.timedOut` and the
    /// connection is closed (default 30 seconds). This is the vault's own clock, so it also holds when the server is
    /// frozen or a network partition leaves the connection open but silent, which neither PostgreSQL's
    /// `statement_timeout` nor TCP keepalives can catch. The vault's statements take milliseconds; the longest are
    /// a batch of an import or a rotation, and a migration waiting for another instance's migration.
    public var statementTimeout: TimeInterval = 30
    /// The PostgreSQL schema that holds the vault's tables; nil: the connection's `search_path` (usually
    /// `public`). Lower-case letters, digits and underscores. ``Vault/migrate()`` creates it when it is missing,
    /// or, when the vault's role may not, fails with `.databaseConfiguration` and the statement an administrator
    /// runs instead.
    public var schema: String?
    /// Whether statements are prepared once per connection under a name (the default, fastest when the vault talks
    /// to PostgreSQL itself) or sent unnamed, parsed with every call (false): what a connection pooler in
    /// transaction mode needs (PgBouncer before 1.21 or without `max_prepared_statements`, RDS Proxy, hosted
    /// poolers), since it hands each statement to any of its server connections and a named statement lives on
    /// one. With the default, the vault notices such a pooler when a named statement fails for that reason
    /// (SQLSTATE 42P05 or 26000, the statement not run), logs a warning and switches to unnamed statements itself;
    /// false avoids that detour and the one operation it can fail (a transaction already under way). False
    /// cannot be combined with ``schema``.
    public var preparedStatements = true
    /// An access token with less than this many seconds left counts as expired (default 5 minutes).
    public var refreshMargin: TimeInterval
    /// Token endpoints by provider name (`zoho_crm`, …), for refreshing and exchanging codes.
    public var providers: [String: OAuthProvider]
    /// Where the vault's metrics go (refreshes by outcome, refresh time, lease and pool waits, values that did not
    /// open, rows per key id; names and labels in docs/refresh.md). Nil: swift-metrics' `MetricsSystem.factory`,
    /// which a service bootstraps once with its backend (Prometheus, OpenTelemetry); unbootstrapped, nothing is
    /// recorded.
    public var metricsFactory: (any MetricsFactory)?
    /// Where the vault's spans go (one per refresh, one per database call, with client and provider attributes and
    /// no secret; docs/refresh.md). Nil: swift-distributed-tracing's `InstrumentationSystem.tracer`, which a
    /// service bootstraps once (OpenTelemetry); unbootstrapped, nothing is recorded.
    public var tracer: (any Tracer)?
    /// Timeouts and retries for token endpoints, and how long to wait for another process's refresh.
    public var refreshPolicy: RefreshPolicy
    /// How token endpoints are called. Default: Foundation's URLSession.
    public var transport: any HTTPTransport
    /// What the audit trail records; by default every change, not reads.
    public var audit = AuditSettings()

    /// A configuration; each argument sets the property of the same name, and of two providers with the same name
    /// the later wins. Nothing is checked or connected until ``Vault/init(configuration:logger:)``.
    public init(
        databaseURL: String, keyring: Keyring, maximumConnections: Int = 4, refreshMargin: TimeInterval = 300,
        providers: [OAuthProvider] = [], refreshPolicy: RefreshPolicy = RefreshPolicy(),
        transport: any HTTPTransport = URLSessionHTTPTransport()
    ) {
        self.databaseURL = databaseURL
        self.keyring = keyring
        self.maximumConnections = maximumConnections
        self.refreshMargin = refreshMargin
        self.providers = Dictionary(providers.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        self.refreshPolicy = refreshPolicy
        self.transport = transport
    }

    /// Adds or replaces a provider (any RFC 6749 token endpoint).
    public mutating func register(_ provider: OAuthProvider) {
        providers[provider.name] = provider
    }

    /// Reads `DATABASE_URL` (optional: libpq's `PG*` variables apply without it), `TOKEN_VAULT_POOL_SIZE`
    /// (optional, default 4), `TOKEN_VAULT_POOL_TIMEOUT` and `TOKEN_VAULT_STATEMENT_TIMEOUT` (seconds, default 30),
    /// `TOKEN_VAULT_REFRESH_MARGIN` (seconds, default 300), `TOKEN_VAULT_PREPARED_STATEMENTS` (`on` or `off`,
    /// default on), `TOKEN_VAULT_SCHEMA` (optional), `TOKEN_VAULT_AUDIT` (default on), `TOKEN_VAULT_AUDIT_READS`
    /// (default off), `TOKEN_VAULT_AUDIT_ACTOR`, the keyring variables (see
    /// ``Keyring/fromEnvironment(_:)``), the Zoho variables (see
    /// ``OAuthProvider/zohoFromEnvironment(_:)``) and `TOKEN_VAULT_PROVIDERS_FILE` (see
    /// ``OAuthProvider/fromProvidersFile(_:environment:variable:)``).
    ///
    /// - Throws: `.keyConfiguration` for the keys, `.providerConfiguration` for the Zoho variables and the
    ///   providers file (with the line of the mistake, or a name both configure), and
    ///   `.invalidInput` when the pool size, a timeout or the refresh margin is out of range,
    ///   `TOKEN_VAULT_PREPARED_STATEMENTS` is neither on nor off, or `TOKEN_VAULT_SCHEMA` is not a plain lower-case
    ///   name. Messages never
    ///   echo a secret.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(VaultError) -> VaultConfiguration {
        try fromEnvironment(environment, keyring: try Keyring.fromEnvironment(environment))
    }

    /// ``fromEnvironment(_:)`` with a keyring built elsewhere, for example by ``Keyring/init(provider:)`` from a
    /// KMS client: the key variables are not read.
    ///
    /// - Throws: as ``fromEnvironment(_:)``, except for the keys.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment, keyring: Keyring
    ) throws(VaultError) -> VaultConfiguration {
        var size = 4
        if let text = environment[Variable.poolSize], !text.isEmpty {
            guard let value = Int(text), ConnectionPool.sizes.contains(value) else {
                throw VaultError(
                    .invalidInput, "\(Variable.poolSize) must be a whole number from 1 to 1000, not '\(text)'.")
            }
            size = value
        }
        var margin: TimeInterval = 300
        if let text = environment[Variable.refreshMargin], !text.isEmpty {
            guard let value = TimeInterval(text), value >= 0, value < 86_400 else {
                throw VaultError(
                    .invalidInput,
                    "\(Variable.refreshMargin) must be a number of seconds from 0 to 86399, not '\(text)'.")
            }
            margin = value
        }
        var configuration = VaultConfiguration(
            databaseURL: environment[Variable.databaseURL] ?? "", keyring: keyring, maximumConnections: size,
            refreshMargin: margin, providers: try OAuthProvider.zohoFromEnvironment(environment))
        if let path = environment[Variable.providersFile], !path.isEmpty {
            let zohoNames = Set(configuration.providers.keys)
            for provider in try OAuthProvider.fromProvidersFile(
                path, environment: environment, variable: Variable.providersFile)
            {
                guard !zohoNames.contains(provider.name) else {
                    throw VaultError(
                        .providerConfiguration,
                        "provider '\(provider.name)' is configured twice: by the ZOHO_* variables and in "
                            + "\(Variable.providersFile); rename the file's entry.")
                }
                configuration.register(provider)
            }
        }
        if let text = environment[Variable.preparedStatements], !text.isEmpty {
            switch text.lowercased() {
            case "on", "true", "1": configuration.preparedStatements = true
            case "off", "false", "0": configuration.preparedStatements = false
            default:
                throw VaultError(
                    .invalidInput, "\(Variable.preparedStatements) must be on or off, not '\(text)'.")
            }
        }
        if let text = environment[Variable.schema], !text.isEmpty {
            guard ConnectionPool.isValidSchema(text) else {
                throw VaultError(
                    .invalidInput,
                    "\(Variable.schema) must be 1 to 63 lower-case letters, digits and underscores, starting with a "
                        + "letter or an underscore, not '\(text)'.")
            }
            configuration.schema = text
        }
        for (variable, apply) in [
            (Variable.audit, { (on: Bool) in configuration.audit.enabled = on }),
            (Variable.auditReads, { (on: Bool) in configuration.audit.auditReads = on }),
        ] {
            guard let text = environment[variable], !text.isEmpty else { continue }
            switch text.lowercased() {
            case "on", "true", "1": apply(true)
            case "off", "false", "0": apply(false)
            default: throw VaultError(.invalidInput, "\(variable) must be on or off, not '\(text)'.")
            }
        }
        if let actor = environment[Variable.auditActor], !actor.isEmpty {
            guard actor.utf8.count <= 256, !actor.utf8.contains(where: { $0 < 0x20 }) else {
                throw VaultError(.invalidInput, "\(Variable.auditActor) must be 1 to 256 bytes of printable text.")
            }
            configuration.audit.actor = actor
        }
        if let text = environment[Variable.poolTimeout], !text.isEmpty {
            guard let value = TimeInterval(text), Self.connectionWaitTimeouts.contains(value) else {
                throw VaultError(
                    .invalidInput,
                    "\(Variable.poolTimeout) must be a number of seconds from 0.001 to 3600, not '\(text)'.")
            }
            configuration.connectionWaitTimeout = value
        }
        if let text = environment[Variable.statementTimeout], !text.isEmpty {
            guard let value = TimeInterval(text), Self.connectionWaitTimeouts.contains(value) else {
                throw VaultError(
                    .invalidInput,
                    "\(Variable.statementTimeout) must be a number of seconds from 0.001 to 3600, not '\(text)'.")
            }
            configuration.statementTimeout = value
        }
        return configuration
    }

    /// The connection wait and statement timeouts the vault accepts, in seconds.
    static let connectionWaitTimeouts: ClosedRange<TimeInterval> = 0.001...3600

    /// Refuses values the vault cannot work with, naming the field; ``Vault/init(configuration:logger:)`` calls it.
    ///
    /// - Throws: `.invalidInput` when ``maximumConnections`` is not 1 to 1000, ``connectionWaitTimeout`` or
    ///   ``statementTimeout`` not 0.001 to 3600 seconds, ``refreshMargin`` not 0 to 86399
    ///   seconds, ``schema`` not a plain lower-case name or set with ``preparedStatements`` false, a
    ///   ``refreshPolicy`` duration not 0 to 3600 seconds (the
    ///   request timeout more than 0) or its attempts not 1 to 20, or a provider's refresh rate limit empty.
    public func validate() throws(VaultError) {
        func refuse(_ message: String) -> VaultError { VaultError(.invalidInput, "VaultConfiguration: \(message)") }
        if let problem = ConnectionPool.problem(
            maximumConnections: maximumConnections, schema: schema, preparedStatements: preparedStatements)
        {
            throw refuse(problem)
        }
        guard Self.connectionWaitTimeouts.contains(connectionWaitTimeout) else {
            throw refuse("connectionWaitTimeout must be 0.001 to 3600 seconds, not \(connectionWaitTimeout).")
        }
        guard Self.connectionWaitTimeouts.contains(statementTimeout) else {
            throw refuse("statementTimeout must be 0.001 to 3600 seconds, not \(statementTimeout).")
        }
        guard refreshMargin.isFinite, refreshMargin >= 0, refreshMargin < 86_400 else {
            throw refuse("refreshMargin must be 0 to 86399 seconds, not \(refreshMargin).")
        }
        let policy = refreshPolicy
        for (name, value) in [
            ("requestTimeout", policy.requestTimeout), ("initialBackoff", policy.initialBackoff),
            ("maximumBackoff", policy.maximumBackoff), ("waitTimeout", policy.waitTimeout),
        ] {
            guard value.isFinite, value >= 0, value <= 3600 else {
                throw refuse("refreshPolicy.\(name) must be 0 to 3600 seconds, not \(value).")
            }
        }
        guard policy.requestTimeout > 0 else { throw refuse("refreshPolicy.requestTimeout must be more than 0.") }
        guard (1...20).contains(policy.attempts) else {
            throw refuse("refreshPolicy.attempts must be 1 to 20, not \(policy.attempts).")
        }
        for provider in providers.values {
            if let limit = provider.refreshRateLimit {
                guard limit.count >= 1, limit.window.isFinite, limit.window > 0, limit.window <= 86_400 else {
                    throw refuse(
                        "the refresh rate limit of provider '\(provider.name)' must allow at least 1 refresh in a "
                            + "window of more than 0 and at most 86400 seconds.")
                }
            }
        }
    }

    public var description: String {
        "VaultConfiguration(databaseURL: <redacted>, keys: \(keyring.keyIDs), "
            + "maximumConnections: \(maximumConnections), statementTimeout: \(statementTimeout), "
            + "schema: \(schema ?? "<search_path>"), preparedStatements: \(preparedStatements), "
            + "refreshMargin: \(refreshMargin), audit: \(audit.enabled), auditReads: \(audit.auditReads), "
            + "providers: \(providers.keys.sorted()))"
    }

    /// The same as ``description``: the connection string may hold a password and is never printed.
    public var debugDescription: String { description }

    /// What `dump` and debuggers show: the settings without the connection string.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "databaseURL": "<redacted>", "keyring": keyring.keyIDs, "maximumConnections": maximumConnections,
                "statementTimeout": statementTimeout, "schema": schema as Any,
                "preparedStatements": preparedStatements, "refreshMargin": refreshMargin,
                "audit": audit.enabled, "auditReads": audit.auditReads,
                "providers": providers.keys.sorted(),
            ], displayStyle: .struct)
    }
}
