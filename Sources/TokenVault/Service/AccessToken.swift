import Foundation

/// A usable access token, as ``Vault/accessToken(client:provider:)`` returns it. Prints without the token.
public struct AccessToken: Sendable, CustomStringConvertible {
    /// The token to send to the provider's API; prints as `<redacted>` until you call ``Secret/reveal()``.
    public let value: Secret
    /// When the token stops working; nil when the provider did not say.
    public let expiresAt: Date?
    /// The granted scopes, as the provider sent them (space- or comma-separated).
    public let scopes: String?
    let metadataJSON: String
    /// Provider data, such as Zoho's `api_domain` (decoded on access).
    public var metadata: [String: JSONValue] { JSONValue.parseObject(metadataJSON) }
    /// True when this call obtained it from the provider; false when it was stored and still valid.
    public let refreshed: Bool

    /// Zoho's API domain for this account (`https://www.zohoapis.eu`, …), when the provider sent one.
    public var apiDomain: String? { metadata["api_domain"]?.stringValue }

    init(value: Secret, expiresAt: Date?, scopes: String?, metadataJSON: String, refreshed: Bool) {
        self.value = value
        self.expiresAt = expiresAt
        self.scopes = scopes
        self.metadataJSON = metadataJSON
        self.refreshed = refreshed
    }

    init(value: Secret, expiresAt: Date?, scopes: String?, metadata: [String: JSONValue], refreshed: Bool) {
        self.init(
            value: value, expiresAt: expiresAt, scopes: scopes, metadataJSON: JSONValue.serialize(metadata),
            refreshed: refreshed)
    }

    public var description: String {
        "AccessToken(value: <redacted>, expiresAt: \(expiresAt.map { "\($0)" } ?? "nil"), refreshed: \(refreshed))"
    }
}

/// The refresh state of one row, without secrets, as ``Vault/status(client:provider:)`` returns it.
public struct TokenStatus: Sendable, Codable {
    /// The client (tenant, account) the tokens belong to.
    public let clientID: String
    /// The provider name the row is stored under, such as `zoho_crm`.
    public let provider: String
    /// The key the row is sealed under.
    public let keyID: KeyID
    /// When the stored access token stops working; nil when unknown.
    public let expiresAt: Date?
    /// True when the access token is valid for longer than the refresh margin.
    public let accessTokenValid: Bool
    /// The provider refused the refresh token; nothing is refreshed until new tokens are stored.
    public let needsReauthorization: Bool
    /// Why the last refresh failed, without secrets; nil after a success or when tokens were stored since.
    public let lastRefreshError: String?
    /// When the vault last refreshed the tokens at the provider; nil when it never has.
    public let lastRefreshedAt: Date?
    /// When the row last changed (tokens stored or refreshed, a refresh failure recorded); re-sealing under a
    /// new key leaves it alone.
    public let updatedAt: Date
    /// The row's version, incremented by every write.
    public let version: Int64
    /// The account's own accounts server (Zoho's data centres), where it is refreshed and revoked; nil: the
    /// provider's default.
    public var accountsServer: String? = nil

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", provider, keyID = "key_id", expiresAt = "expires_at"
        case accessTokenValid = "access_token_valid", needsReauthorization = "needs_reauthorization"
        case lastRefreshError = "last_refresh_error", lastRefreshedAt = "last_refreshed_at"
        case updatedAt = "updated_at", version, accountsServer = "accounts_server"
    }
}
