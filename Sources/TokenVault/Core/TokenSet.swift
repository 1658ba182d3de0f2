import Foundation

/// Tokens to store for one (client, provider): what an authorization or a refresh returned.
public struct TokenSet: Sendable, Equatable, CustomStringConvertible {
    /// The access token; nil when only a refresh token is known, so that the first
    /// ``Vault/accessToken(client:provider:)`` refreshes.
    public var accessToken: Secret?
    /// The long-lived token the vault trades for new access tokens.
    public var refreshToken: Secret
    /// When the access token stops working; nil when the provider did not say (it then counts as valid).
    public var expiresAt: Date?
    /// As the provider sent them (space- or comma-separated).
    public var scopes: String?
    /// Provider data that is not secret, such as Zoho's `api_domain`.
    public var metadata: [String: JSONValue]

    /// Tokens you already hold; ``TokenResponse/parse(_:receivedAt:fallbackRefreshToken:requireAccessToken:)``
    /// makes them from a token endpoint's answer.
    public init(
        accessToken: Secret?, refreshToken: Secret, expiresAt: Date? = nil, scopes: String? = nil,
        metadata: [String: JSONValue] = [:]
    ) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.expiresAt = expiresAt
        self.scopes = scopes
        self.metadata = metadata
    }

    public var description: String {
        "TokenSet(accessToken: \(accessToken == nil ? "nil" : "<redacted>"), refreshToken: <redacted>, "
            + "expiresAt: \(expiresAt.map { "\($0)" } ?? "nil"), scopes: \(scopes ?? "nil"), metadata: \(metadata))"
    }
}

extension TokenSet {
    /// The metadata as the JSON the row stores, after checking that PostgreSQL can store the metadata and the
    /// scopes as they are: a NUL character (U+0000) fails a `jsonb` value (SQLSTATE 22P05), and would cut a
    /// text parameter short (libpq sends those as C strings), silently.
    func storableMetadataJSON() throws(VaultError) -> String {
        try checkScopesStorable()
        try checkExpiry()
        return try JSONValue.serializeForStorage(metadata)
    }

    /// `storableMetadataJSON`'s checks without writing the JSON.
    func checkStorable() throws(VaultError) {
        try checkScopesStorable()
        try checkExpiry()
        if JSONValue.containsNUL(metadata) { throw JSONValue.nulInMetadata }
    }

    /// The longest an access token is believed to live: ten years. A provider's `expires_in` beyond it is a unit
    /// mistake or an attack, and an expiry that far away would never be refreshed.
    static let longestLifetime: TimeInterval = 10 * 365.25 * 86_400

    /// Refuses an expiry before 1970, more than ``longestLifetime`` from now, or not a number: such a date cannot
    /// be stored exactly (it traps when turned into microseconds) and would never be refreshed.
    func checkExpiry(now: Date = Date()) throws(VaultError) {
        guard let expiresAt else { return }
        let seconds = expiresAt.timeIntervalSince1970
        guard seconds.isFinite, seconds >= 0, seconds <= now.timeIntervalSince1970 + Self.longestLifetime else {
            throw VaultError(
                .invalidInput,
                "the access token's expiry is \(seconds.isFinite ? "\(expiresAt)" : "not a date"): it must lie between "
                    + "1970 and ten years from now (expires_in counts seconds; Zoho sends 3600).")
        }
    }

    private func checkScopesStorable() throws(VaultError) {
        if let scopes, scopes.utf8.contains(0) {
            throw VaultError(
                .invalidInput,
                "the token response's scope holds a NUL character (\\u0000), which PostgreSQL cannot store; "
                    + "remove it.")
        }
    }

    /// These tokens with every NUL character removed from the scopes and the metadata, for a provider's answer:
    /// its tokens must be kept even so (a rotated refresh token exists nowhere else). Nil when there was none.
    func removingNULs() -> TokenSet? {
        guard scopes?.utf8.contains(0) == true || JSONValue.containsNUL(metadata) else { return nil }
        var clean = self
        clean.scopes = scopes?.removingNULs
        clean.metadata = JSONValue.removingNULs(metadata)
        return clean
    }
}
