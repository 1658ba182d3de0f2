import Foundation

/// A usable access token, as `Vault.accessToken(client:provider:)` returns it.
public struct AccessToken: Sendable, CustomStringConvertible {
    public let value: Secret
    public let expiresAt: Date?
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

/// The refresh state of one row, without secrets (`token-vault status`).
public struct TokenStatus: Sendable, Codable {
    public let clientID: String
    public let provider: String
    public let keyID: KeyID
    public let expiresAt: Date?
    /// True when the access token is valid for longer than the refresh margin.
    public let accessTokenValid: Bool
    /// The provider refused the refresh token; nothing is refreshed until new tokens are stored.
    public let needsReauthorization: Bool
    public let lastRefreshError: String?
    public let lastRefreshedAt: Date?
    public let updatedAt: Date
    public let version: Int64

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", provider, keyID = "key_id", expiresAt = "expires_at"
        case accessTokenValid = "access_token_valid", needsReauthorization = "needs_reauthorization"
        case lastRefreshError = "last_refresh_error", lastRefreshedAt = "last_refreshed_at"
        case updatedAt = "updated_at", version
    }
}
