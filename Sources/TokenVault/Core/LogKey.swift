import Logging

/// The metadata keys of the vault's log records, in one place so that they stay consistent. Values are ids,
/// counts and error codes: never a token, a key, a password or a SQL parameter.
enum LogKey {
    /// The row's client id.
    static let client = "token_vault.client"
    /// The row's provider.
    static let provider = "token_vault.provider"
    /// The id of the key that sealed (or should open) the row.
    static let keyID = "token_vault.key_id"
    /// The row's version after a write.
    static let version = "token_vault.version"
    /// The number of the provider request being made (1, 2, …) within one refresh or exchange.
    static let attempt = "token_vault.attempt"
    /// How many provider requests one refresh made in all.
    static let attempts = "token_vault.attempts"
    /// A `VaultError.Code`.
    static let error = "token_vault.error"
    /// Why a request is retried or failed, without secrets.
    static let reason = "token_vault.reason"
    /// A PostgreSQL SQLSTATE.
    static let sqlState = "token_vault.sqlstate"
    /// Schema migrations applied.
    static let migrations = "token_vault.migrations"
    /// Rows read, written or examined.
    static let rows = "token_vault.rows"
    /// Rows that failed to open.
    static let failures = "token_vault.failures"
    /// Rows re-sealed by a key rotation.
    static let resealed = "token_vault.resealed"
    /// Rows a key rotation left under an older key.
    static let remaining = "token_vault.remaining"
    /// Names of fields (never their values), such as those a provider's answer held and the vault dropped.
    static let fields = "token_vault.fields"
    /// Whether a key rotation only counted (`--dry-run`).
    static let dryRun = "token_vault.dry_run"
    /// A database role name (the application's, for grants).
    static let role = "token_vault.role"
}
