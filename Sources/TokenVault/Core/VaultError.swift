/// Every error the vault throws.
///
/// The `message` says what happened and what to do about it. It never contains a token, a key, a password,
/// a SQL parameter or a connection string, so it is safe to log and to show to an operator.
public struct VaultError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, switchable category, safe to use as a metrics label.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The key configuration (environment variables or key file) is missing or malformed.
        public static let keyConfiguration = Code("keyConfiguration")
        /// A row is sealed under a key id that is not in the keyring.
        public static let unknownKey = Code("unknownKey")
        /// A sealed value failed authentication: wrong row, wrong field, tampered or corrupted.
        public static let authenticationFailed = Code("authenticationFailed")
        /// A sealed value does not have the stored format (wrong length, unknown format byte).
        public static let malformedCiphertext = Code("malformedCiphertext")
        /// No tokens are stored for the client and provider.
        public static let notFound = Code("notFound")
        /// The stored access token has expired (or is within the safety margin) and cannot be used.
        public static let tokenExpired = Code("tokenExpired")
        /// Input (a token response, an argument) is not valid.
        public static let invalidInput = Code("invalidInput")
        /// The connection settings (DATABASE_URL) cannot be parsed.
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
        /// Provider settings (client id, secret, data centre, accounts URL) are missing or malformed.
        public static let providerConfiguration = Code("providerConfiguration")
        /// A provider name is not configured.
        public static let unknownProvider = Code("unknownProvider")
        /// Waiting for another process's refresh took too long.
        public static let timedOut = Code("timedOut")
    }

    public let code: Code
    public let message: String
    /// The PostgreSQL SQLSTATE, for `.database` and `.connectionFailed` errors that came from the server.
    public let sqlState: String?

    public init(_ code: Code, _ message: String, sqlState: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    public var description: String {
        if let sqlState { return "\(message) (SQLSTATE \(sqlState))" }
        return message
    }
}
