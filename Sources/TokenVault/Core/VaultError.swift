/// Every error the vault throws.
///
/// Switch on ``code`` to decide what to do; read ``message`` to know what happened. The message speaks of the
/// library's own API (a keyring, a configuration, a row) and never contains a token, a key, a password, a SQL
/// parameter or a connection string, so it is safe to log and to show to an operator. Structured details a caller
/// acts on are fields: ``retryAfter`` when the vault is rate limited, ``sqlState`` when PostgreSQL answered, and
/// ``underlying`` when another library's error caused this one.
///
/// ```swift
/// do {
///     let token = try await vault.accessToken(client: "acme", provider: "zoho_crm")
///     …
/// } catch let error as VaultError where error.code == .rateLimited {
///     response.headers[.retryAfter] = error.retryAfter.map { "\($0.components.seconds)" }
/// }
/// ```
///
/// Errors are made only by the vault; two errors are equal when their code, message, SQLSTATE and wait are.
public struct VaultError: Error, Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// A stable, switchable category, safe to use as a metrics label.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The keys are missing or malformed, or the keyring is inconsistent (a key twice, the current key retired).
        public static let keyConfiguration = Code("keyConfiguration")
        /// A row is sealed under a key id that is not in the keyring.
        public static let unknownKey = Code("unknownKey")
        /// A sealed value failed authentication: wrong row, wrong field, tampered or corrupted.
        public static let authenticationFailed = Code("authenticationFailed")
        /// A sealed value does not have the stored format: a wrong length (17 bytes or fewer holds no token), an
        /// unknown format byte, or a value that opens but is not UTF-8 text.
        public static let malformedCiphertext = Code("malformedCiphertext")
        /// No tokens are stored for the client and provider.
        public static let notFound = Code("notFound")
        /// The stored access token has expired (or is within the safety margin) and cannot be used.
        public static let tokenExpired = Code("tokenExpired")
        /// Input (a token response, an argument) is not valid.
        public static let invalidInput = Code("invalidInput")
        /// The database connection settings are wrong: the string cannot be parsed, or the server refused them
        /// (authentication, TLS verification, an unknown database or role). Retrying will not help.
        public static let databaseConfiguration = Code("databaseConfiguration")
        /// The database could not be reached, or the connection was lost.
        public static let connectionFailed = Code("connectionFailed")
        /// The database answered with an error; `sqlState` says which.
        public static let database = Code("database")
        /// The database schema is missing or older than this version expects.
        public static let schemaOutdated = Code("schemaOutdated")
        /// The row changed while we worked on it (compare-and-set lost).
        public static let conflict = Code("conflict")
        /// The provider refused the refresh token: the user must authorize again.
        public static let needsReauthorization = Code("needsReauthorization")
        /// The provider's token endpoint failed or answered something unusable.
        public static let providerError = Code("providerError")
        /// Refreshing now would exceed the provider's rate limit.
        public static let rateLimited = Code("rateLimited")
        /// A provider's settings (client id, secret, token URL) are missing, malformed or refused by the provider.
        public static let providerConfiguration = Code("providerConfiguration")
        /// A provider name is not configured.
        public static let unknownProvider = Code("unknownProvider")
        /// Waiting took too long: for another process's refresh, for a free database connection, or for the
        /// database to answer a statement (the message then says whether a write it carried may have been applied).
        public static let timedOut = Code("timedOut")
        /// The calling task was cancelled while it waited (for a database connection, for example).
        public static let cancelled = Code("cancelled")
        /// An authorization callback's `state` matches no authorization this vault began (or is malformed): a
        /// forged or truncated link, or one from another deployment.
        public static let authorizationStateUnknown = Code("authorizationStateUnknown")
        /// The authorization the callback's `state` names was begun longer ago than it may live (10 minutes by
        /// default): the user took too long.
        public static let authorizationStateExpired = Code("authorizationStateExpired")
        /// The authorization the callback's `state` names was already completed once: a state is single-use, so a
        /// reloaded or replayed callback is refused.
        public static let authorizationStateReplayed = Code("authorizationStateReplayed")
        /// The callback's `state` belongs to an authorization for another client, provider or redirect URI than
        /// the one completing it.
        public static let authorizationStateMismatch = Code("authorizationStateMismatch")
        /// The provider's callback reports that the user (or the provider) declined the authorization, such as
        /// `error=access_denied`.
        public static let authorizationDenied = Code("authorizationDenied")
        /// The provider refused the authorization code, its PKCE verifier or its redirect URI in the code
        /// exchange (a used or expired code).
        public static let authorizationCodeRefused = Code("authorizationCodeRefused")
        /// An accounts server (from a callback's `accounts-server` or `location`, an argument, or a stored row) is
        /// not one the provider is configured to trust; nothing was sent to it.
        public static let accountsServerRefused = Code("accountsServerRefused")
        /// Revoking a token at the provider failed (network, timeout, HTTP 5xx, refused credentials); the row was
        /// kept.
        public static let revocationFailed = Code("revocationFailed")

        /// Every code, for reading one back by name (a report keyed by ``description``).
        package static let all: [Code] = [
            .keyConfiguration, .unknownKey, .authenticationFailed, .malformedCiphertext, .notFound, .tokenExpired,
            .invalidInput, .databaseConfiguration, .connectionFailed, .database, .schemaOutdated, .conflict,
            .needsReauthorization, .providerError, .rateLimited, .providerConfiguration, .unknownProvider, .timedOut,
            .cancelled, .authorizationStateUnknown, .authorizationStateExpired, .authorizationStateReplayed,
            .authorizationStateMismatch, .authorizationDenied, .authorizationCodeRefused, .accountsServerRefused,
            .revocationFailed,
        ]

        /// The code whose ``description`` is `name`; nil for none.
        package static func named(_ name: String) -> Code? { all.first { $0.name == name } }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What happened, in the library's terms, and what would fix it. Safe to log.
    public let message: String
    /// The PostgreSQL SQLSTATE, for `.database` and `.connectionFailed` errors that came from the server.
    public let sqlState: String?
    /// For `.rateLimited` raised by the vault's own refresh cap: how long until the provider may be asked again
    /// (what an HTTP service puts in `Retry-After`). Nil when the wait is not known.
    public let retryAfter: Duration?
    /// The error from another library (a transport, Foundation) that caused this one, for logging and debugging.
    public let underlying: (any Error)?
    /// The `error` code a token endpoint answered (`invalid_client`, `invalid_request`, …), sanitised, for
    /// `.providerError`, `.providerConfiguration` and `.needsReauthorization` errors that carry one; the audit trail
    /// records it with a failed refresh.
    public let providerErrorCode: String?

    package init(
        _ code: Code, _ message: String, sqlState: String? = nil, retryAfter: Duration? = nil,
        underlying: (any Error)? = nil, providerErrorCode: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.retryAfter = retryAfter
        self.underlying = underlying
        self.providerErrorCode = providerErrorCode
    }

    public static func == (lhs: VaultError, rhs: VaultError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.sqlState == rhs.sqlState
            && lhs.retryAfter == rhs.retryAfter
    }

    /// The message, with the SQLSTATE when there is one.
    public var description: String {
        if let sqlState { return "\(message) (SQLSTATE \(sqlState))" }
        return message
    }

    /// ``description`` with the code, the wait and the underlying error's type. Only the type: another
    /// library's error (a transport's, say) may quote the request it failed on, with its secrets. Read
    /// ``underlying`` itself where its details are needed and known to be safe.
    public var debugDescription: String {
        var text = "VaultError(code: \(code), message: \(description)"
        if let retryAfter { text += ", retryAfter: \(retryAfter)" }
        if let underlying { text += ", underlying: \(type(of: underlying))" }
        return text + ")"
    }

    /// What `dump` and debuggers show: the fields, with only the underlying error's type (see
    /// ``debugDescription``).
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "code": code, "message": message, "sqlState": sqlState as Any, "retryAfter": retryAfter as Any,
                "underlying": underlying.map { "\(type(of: $0))" } as Any,
            ], displayStyle: .struct)
    }
}

extension VaultError {
    /// A duration as the vault's messages say it: "30 s", or "0.5 s" when it is not whole.
    package static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }
}
