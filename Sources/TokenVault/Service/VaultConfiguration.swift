import Foundation

/// How a `Vault` connects and which keys it uses.
public struct VaultConfiguration: Sendable, CustomStringConvertible {
    /// Environment variables read by `fromEnvironment`.
    public enum Variable {
        public static let databaseURL = "DATABASE_URL"
        public static let poolSize = "TOKEN_VAULT_POOL_SIZE"
    }

    /// A `postgresql://` URL or libpq `key=value` conninfo. Empty: libpq's `PG*` variables and defaults.
    /// May contain a password: it is never printed or logged.
    public var databaseURL: String
    public var keyring: Keyring
    /// The most connections the vault opens at once.
    public var maximumConnections: Int
    /// An access token with less than this many seconds left counts as expired (default 5 minutes).
    public var refreshMargin: TimeInterval

    public init(databaseURL: String, keyring: Keyring, maximumConnections: Int = 4, refreshMargin: TimeInterval = 300) {
        self.databaseURL = databaseURL
        self.keyring = keyring
        self.maximumConnections = maximumConnections
        self.refreshMargin = refreshMargin
    }

    /// Reads `DATABASE_URL` (optional: libpq's `PG*` variables apply without it), `TOKEN_VAULT_POOL_SIZE`
    /// (optional, default 4) and the keyring variables (see `Keyring.fromEnvironment`).
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(VaultError) -> VaultConfiguration {
        let keyring = try Keyring.fromEnvironment(environment)
        var size = 4
        if let text = environment[Variable.poolSize], !text.isEmpty {
            guard let value = Int(text), value >= 1, value <= 1000 else {
                throw VaultError(
                    .invalidInput, "\(Variable.poolSize) must be a whole number from 1 to 1000, not '\(text)'.")
            }
            size = value
        }
        return VaultConfiguration(
            databaseURL: environment[Variable.databaseURL] ?? "", keyring: keyring, maximumConnections: size)
    }

    public var description: String {
        "VaultConfiguration(databaseURL: <redacted>, keys: \(keyring.keyIDs), "
            + "maximumConnections: \(maximumConnections), refreshMargin: \(refreshMargin))"
    }
}
