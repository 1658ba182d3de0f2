import Foundation

/// Tokens as stored and opened, as ``Vault/fetch(client:provider:)`` returns them. Prints without the tokens.
public struct StoredTokens: Sendable, CustomStringConvertible {
    /// The client (tenant, account) the tokens belong to.
    public let clientID: String
    /// The provider name the row is stored under, such as `zoho_crm`.
    public let provider: String
    /// The access token, whether or not it is still valid; nil when only a refresh token was stored.
    public let accessToken: Secret?
    /// The refresh token.
    public let refreshToken: Secret
    /// When the access token stops working; nil when unknown.
    public let expiresAt: Date?
    /// The granted scopes, as the provider sent them.
    public let scopes: String?
    let metadataJSON: String
    /// Provider data such as Zoho's `api_domain` (decoded from the `metadata` column on access).
    public var metadata: [String: JSONValue] { JSONValue.parseObject(metadataJSON) }
    /// The key the row is sealed under.
    public let keyID: KeyID
    /// When tokens were first stored for this client and provider.
    public let createdAt: Date
    /// When the row last changed (tokens stored or refreshed, a refresh failure recorded); re-sealing under a
    /// new key leaves it alone.
    public let updatedAt: Date
    /// Incremented by every write to the row.
    public let version: Int64

    /// Whether the access token is usable for at least `margin` more seconds at `now`.
    public func isAccessTokenValid(margin: TimeInterval, now: Date = Date()) -> Bool {
        SealedRow.isAccessTokenValid(
            present: accessToken != nil, expiresAt: expiresAt?.timeIntervalSince1970, margin: margin,
            now: now.timeIntervalSince1970)
    }

    public var description: String {
        "StoredTokens(client: \(clientID), provider: \(provider), accessToken: "
            + "\(accessToken == nil ? "nil" : "<redacted>"), refreshToken: <redacted>, "
            + "expiresAt: \(expiresAt.map { "\($0)" } ?? "nil"), keyID: \(keyID), version: \(version))"
    }
}

/// A row without its secrets, as ``Vault/list()`` returns it.
public struct TokenSummary: Sendable, Equatable, Codable {
    /// The client (tenant, account) the tokens belong to.
    public let clientID: String
    /// The provider name the row is stored under, such as `zoho_crm`.
    public let provider: String
    /// The key the row is sealed under; rows not under the current key await a rotation.
    public let keyID: KeyID
    /// When the stored access token stops working; nil when unknown.
    public let expiresAt: Date?
    /// The granted scopes, as the provider sent them.
    public let scopes: String?
    /// Whether an access token is stored (it may have expired); false when only a refresh token is.
    public let hasAccessToken: Bool
    /// When tokens were first stored for this client and provider.
    public let createdAt: Date
    /// When the row last changed (tokens stored or refreshed, a refresh failure recorded); re-sealing under a
    /// new key leaves it alone.
    public let updatedAt: Date
    /// The row's version, incremented by every write.
    public let version: Int64
}
