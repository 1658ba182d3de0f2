import Foundation
import Logging
import Tracing

/// Stores OAuth tokens sealed in PostgreSQL and hands them back opened.
///
/// ```swift
/// let vault = try Vault(configuration: .fromEnvironment(), logger: logger)
/// try await vault.migrate()
/// try await vault.store(tokens, client: "acme", provider: "zoho_crm")
/// let token = try await vault.accessToken(client: "acme", provider: "zoho_crm")
/// ```
///
/// Safe to share between tasks. Call ``shutdown()`` when done to close the connections.
///
/// Besides the codes each method names, every call that reaches the database can throw `.connectionFailed`,
/// `.database` (with ``VaultError/sqlState``), `.schemaOutdated` when ``migrate()`` has not run for this version, `.cancelled`
/// when the task is cancelled while it waits for a connection, and `.timedOut` when no connection comes free in time
/// or the server leaves a statement unanswered for ``VaultConfiguration/statementTimeout``. Client ids and provider names must be 1 to 256
/// bytes of printable text, or the call throws `.invalidInput`.
public final class Vault: Sendable, CustomReflectable {
    /// The configuration the vault was made with, after ``VaultConfiguration/validate()``.
    public let configuration: VaultConfiguration
    package let sealer: Sealer
    package let repository: TokenRepository
    /// Where log lines go: the vault's logger with the calling task's context (``init(configuration:logger:)``).
    let logging: ContextLogger
    /// The logger for a line logged now.
    var logger: Logger { logging.current }
    let flights = RefreshFlights()
    let eventHub = EventHub()
    let metrics: VaultMetrics
    let tracer: (any Tracer)?
    let endpoint: TokenEndpointClient
    package let auditSigner: AuditSigner
    let auditHeads = AuditHeadCache()
    let auditActor: AuditActor

    /// Makes a vault; no connection is opened until the first call that needs one.
    ///
    /// - Parameters:
    ///   - configuration: checked with ``VaultConfiguration/validate()``.
    ///   - logger: receives client, provider and key ids, never a token or key. A call made inside swift-log's
    ///     `withLogger(mergingMetadata:)` scope logs with that scope's metadata (a request id) and metadata provider
    ///     added. Nil (the default): each call logs to the task-local `Logger.current` that a `withLogger` scope
    ///     bound, and nowhere outside one.
    /// - Throws: `.invalidInput` when a configuration value is out of range (see ``VaultConfiguration/validate()``).
    public init(
        configuration: VaultConfiguration,
        logger: Logger? = nil
    ) throws(VaultError) {
        try configuration.validate()
        self.configuration = configuration
        self.sealer = Sealer(keyring: configuration.keyring)
        self.repository = TokenRepository(
            conninfo: configuration.databaseURL, maximumConnections: configuration.maximumConnections,
            schema: configuration.schema, preparedStatements: configuration.preparedStatements,
            waitLimit: configuration.connectionWaitTimeout, statementTimeout: configuration.statementTimeout,
            metrics: VaultMetrics(factory: configuration.metricsFactory),
            tracer: Self.tracer(configuration), logger: ContextLogger(logger))
        self.logging = ContextLogger(logger)
        self.metrics = VaultMetrics(factory: configuration.metricsFactory)
        self.tracer = Self.tracer(configuration)
        self.endpoint = TokenEndpointClient(
            transport: configuration.transport, policy: configuration.refreshPolicy, logging: ContextLogger(logger))
        self.auditSigner = AuditSigner(keyring: configuration.keyring)
        self.auditActor = AuditActor(
            application: configuration.audit.applicationName, host: Self.hostName, pid: getpid(),
            name: configuration.audit.actor)
    }

    /// What `dump` and debuggers show: the configuration, redacted, and nothing of the pool or the keys.
    public var customMirror: Mirror {
        Mirror(self, children: ["configuration": configuration], displayStyle: .class)
    }

    /// The configured tracer, else the bootstrapped one; nil when that is the no-op tracer, so that an application
    /// without tracing makes no span at all on its database calls.
    private static func tracer(_ configuration: VaultConfiguration) -> (any Tracer)? {
        let tracer = configuration.tracer ?? InstrumentationSystem.tracer
        return tracer is NoOpTracer ? nil : tracer
    }

    /// Waits for the refreshes in flight to end (at most as long as the refresh policy lets a refresh take), then
    /// closes the database connections. The vault cannot be used afterwards.
    public func shutdown() async {
        // A refresh whose provider already answered must be able to write the answer (a rotated refresh token
        // exists nowhere else): refreshes in flight end first; each is bounded by the refresh policy.
        await flights.waitForAll()
        await repository.shutdown()
        eventHub.finish()
    }

    /// Creates or upgrades the schema; safe to run from several instances at once. Returns the versions applied
    /// (empty when the schema was current).
    @discardableResult
    public func migrate() async throws(VaultError) -> [Int] {
        let applied = try await repository.migrate()
        if !applied.isEmpty {
            logger.notice("applied schema migrations", metadata: [LogKey.migrations: "\(applied)"])
        }
        return applied
    }

    /// A health check that touches the database: one round trip on a pooled connection that reads the schema's
    /// version. Returns normally when the vault can serve; for a readiness probe.
    /// - Throws: `.schemaOutdated` when ``migrate()`` has not run for this version; `.connectionFailed`,
    ///   `.databaseConfiguration` or `.timedOut` (a pool with no free connection, a server that does not answer)
    ///   when the database cannot be used.
    public func ping() async throws(VaultError) {
        let version = try await repository.schemaVersion()
        guard version >= Migrations.latestVersion else {
            throw VaultError(
                .schemaOutdated,
                "the database's schema is at version \(version); this vault needs \(Migrations.latestVersion): run "
                    + "migrate() first.")
        }
    }

    /// Seals and stores `tokens` for (client, provider), replacing what was there. Returns the row's new version.
    ///
    /// Storing clears a recorded need to reauthorize, so the vault refreshes for the client again.
    /// - Throws: `.invalidInput` when a token is empty or over ``TokenSet/maximumTokenBytes``, the scopes or the
    ///   metadata are too large or hold a NUL character (which PostgreSQL cannot store), or the expiry is before 1970
    ///   or more than ten years ahead (use `nil` for a token that does not expire, not `Date.distantFuture`).
    @discardableResult
    public func store(_ tokens: TokenSet, client: String, provider: String) async throws(VaultError) -> Int64 {
        try await store(tokens, client: client, provider: provider, accountsServer: nil)
    }

    /// Seals and stores `tokens` as ``store(_:client:provider:)`` does, with the account's own accounts server
    /// (an origin such as `https://accounts.zoho.eu`), which its refreshes and revocation then use. Nil keeps the
    /// server the row has (a new row: the provider's default).
    /// - Throws: `.accountsServerRefused` when `accountsServer` is not one of the provider's trusted
    ///   ``OAuthProvider/accountsServers`` (or the provider is not configured while a server is named); otherwise
    ///   as ``store(_:client:provider:)``.
    @discardableResult
    public func store(
        _ tokens: TokenSet, client: String, provider: String, accountsServer: String?
    ) async throws(VaultError) -> Int64 {
        try await store(tokens, client: client, provider: provider, accountsServer: accountsServer, kind: .stored)
    }

    /// `store`, recording the audit event `kind` (`stored`, `exchanged`, `authorized`).
    func store(
        _ tokens: TokenSet, client: String, provider: String, accountsServer: String?, kind: AuditEvent.Kind
    ) async throws(VaultError) -> Int64 {
        try Self.validate(client: client, provider: provider)
        var server: String?
        if let accountsServer {
            guard let configured = configuration.providers[provider] else {
                throw VaultError(
                    .accountsServerRefused,
                    "provider '\(provider)' is not configured, so no accounts server can be trusted for it.")
            }
            server = try configured.resolveAccountsServer(accountsServer, location: nil)
        }
        var row = try sealer.sealRow(tokens, client: client, provider: provider)
        row.accountsServer = server
        let keyID = row.keyID
        let version =
            if auditEnabled {
                try await storeAudited(row, .row(kind, client: client, provider: provider, keyID: keyID))
            } else {
                try await repository.upsert(row)
            }
        logger.info("stored tokens", metadata: Self.metadata(client, provider, keyID))
        return version
    }

    /// The stored tokens for (client, provider), opened.
    /// - Throws: `.notFound` when nothing is stored, `.unknownKey` or `.authenticationFailed` when the row
    ///   cannot be opened with the keyring.
    public func fetch(client: String, provider: String) async throws(VaultError) -> StoredTokens {
        try Self.validate(client: client, provider: provider)
        guard let row = try await repository.find(client: client, provider: provider) else {
            throw Self.notFound(client: client, provider: provider)
        }
        let tokens = try await auditingOpen(row, { (row) throws(VaultError) in try open(row) })
        try await auditRead(row, fields: "access_token,refresh_token")
        return tokens
    }

    /// The stored access token while it is valid for longer than the refresh margin.
    /// - Throws: `.tokenExpired` when it has expired or is about to; `.notFound` when nothing is stored.
    public func storedAccessToken(client: String, provider: String) async throws(VaultError) -> StoredTokens {
        let tokens = try await fetch(client: client, provider: provider)
        guard tokens.isAccessTokenValid(margin: configuration.refreshMargin) else {
            throw VaultError(
                .tokenExpired,
                "the access token for client '\(client)', provider '\(provider)' has expired or expires within "
                    + "\(Int(configuration.refreshMargin)) s; accessToken(client:provider:) refreshes it, or store new tokens."
            )
        }
        return tokens
    }

    /// Deletes the tokens of (client, provider). Returns false when there were none.
    @discardableResult
    public func delete(client: String, provider: String) async throws(VaultError) -> Bool {
        try Self.validate(client: client, provider: provider)
        let keyID = try await audited(chains: [AuditEvent.chain(client: client, provider: provider)]) {
            (transaction) throws(VaultError) in
            let keyID = try await repository.delete(client: client, provider: provider, in: transaction)
            return (keyID, keyID.map { [.row(.deleted, client: client, provider: provider, keyID: $0)] } ?? [])
        }
        if keyID != nil { logger.info("deleted tokens", metadata: Self.metadata(client, provider, keyID)) }
        return keyID != nil
    }

    /// The rows `filter` selects (every row by default), without secrets, in (client, provider) order. For a large
    /// table, ``list(filter:pageSize:_:)`` keeps memory flat.
    ///
    /// `vault.list(filter: .needsReauthorization)` names the accounts whose users must connect again.
    public func list(filter: ListFilter = .all) async throws(VaultError) -> [TokenSummary] {
        var summaries: [TokenSummary] = []
        try await list(filter: filter, pageSize: 1000) { summaries.append(contentsOf: $0) }
        return summaries
    }

    /// The rows `filter` selects (every row by default), without secrets, in (client, provider) order, handed to
    /// `body` a page of up to `pageSize` rows at a time: memory stays flat however large the table. A page is read
    /// after `body` returns. The database filters, so pages hold only selected rows (a page is short only at the
    /// end).
    /// - Throws: `.invalidInput` when `pageSize` is less than 1.
    public func list(
        filter: ListFilter = .all, pageSize: Int, _ body: ([TokenSummary]) -> Void
    ) async throws(VaultError) {
        guard pageSize > 0 else { throw VaultError(.invalidInput, "the page size must be at least 1.") }
        var cursor: (client: String, provider: String)? = nil
        while true {
            let rows = try await repository.listedPage(
                after: cursor, limit: pageSize, needingReauthorization: filter.onlyNeedingReauthorization)
            if !rows.isEmpty { body(rows.map(Self.summary)) }
            guard let last = rows.last, rows.count == pageSize else { return }
            cursor = (last.clientID, last.provider)
        }
    }

    /// Walks the table in pages of `batchSize` rows in key order.
    func forEachPage(batchSize: Int, _ body: ([SealedRow]) throws(VaultError) -> Void) async throws(VaultError) {
        var cursor: (client: String, provider: String)? = nil
        while true {
            let rows = try await repository.page(after: cursor, limit: batchSize)
            try body(rows)
            guard let last = rows.last, rows.count == batchSize else { return }
            cursor = (last.clientID, last.provider)
        }
    }

    static func validate(client: String, provider: String) throws(VaultError) {
        try validate(client, name: "client id")
        try validate(provider, name: "provider")
    }

    private static func validate(_ value: String, name: @autoclosure () -> String) throws(VaultError) {
        // In UTF-8 a byte below 0x20 is always that control character, never part of another character.
        guard !value.isEmpty, value.utf8.count <= 256, !value.utf8.contains(where: { $0 < 0x20 }) else {
            throw VaultError(.invalidInput, "the \(name()) must be 1 to 256 bytes of printable text.")
        }
    }

    package static func notFound(client: String, provider: String) -> VaultError {
        VaultError(.notFound, "no tokens are stored for client '\(client)', provider '\(provider)'.")
    }

    static func metadata(_ client: String, _ provider: String, _ keyID: KeyID?) -> Logger.Metadata {
        var metadata: Logger.Metadata = [LogKey.client: "\(client)", LogKey.provider: "\(provider)"]
        if let keyID { metadata[LogKey.keyID] = "\(keyID)" }
        return metadata
    }

    static func summary(_ row: ListedRow) -> TokenSummary {
        func date(_ seconds: Double?) -> Date? { seconds.map { Date(timeIntervalSince1970: $0) } }
        return TokenSummary(
            clientID: row.clientID, provider: row.provider, keyID: row.keyID, expiresAt: date(row.expiresAt),
            scopes: row.scopes, hasAccessToken: row.hasAccessToken,
            createdAt: Date(timeIntervalSince1970: row.createdAt),
            updatedAt: Date(timeIntervalSince1970: row.updatedAt), version: row.version,
            needsReauthorization: row.needsReauthorization, lastRefreshError: row.lastRefreshError,
            lastRefreshedAt: date(row.lastRefreshedAt), lastRefreshFailedAt: date(row.lastRefreshFailedAt))
    }
}
