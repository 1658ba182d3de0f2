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

/// A row without its secrets, as ``Vault/list(filter:)`` returns it, with its refresh state: a row that
/// ``needsReauthorization`` belongs to an account whose user must connect again.
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
    /// The provider refused the refresh token; nothing is refreshed until new tokens are stored.
    public let needsReauthorization: Bool
    /// Why the last refresh failed, without secrets; nil after a success or when tokens were stored since.
    public let lastRefreshError: String?
    /// When the vault last refreshed the tokens at the provider; nil when it never has.
    public let lastRefreshedAt: Date?
    /// When the last failed refresh was recorded, on the database server's clock; nil when none ever was. It is
    /// history: neither storing tokens nor a later successful refresh clears it (``needsReauthorization`` and
    /// ``lastRefreshError`` are the current state).
    public let lastRefreshFailedAt: Date?

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id", provider, keyID = "key_id", expiresAt = "expires_at", scopes
        case hasAccessToken = "has_access_token", createdAt = "created_at", updatedAt = "updated_at", version
        case needsReauthorization = "needs_reauthorization", lastRefreshError = "last_refresh_error"
        case lastRefreshedAt = "last_refreshed_at", lastRefreshFailedAt = "last_refresh_failed_at"
    }
}

/// Which rows ``Vault/list(filter:)`` and ``Vault/list(filter:pageSize:_:)`` return; the database does the
/// filtering, so a filtered list reads no other row.
public struct ListFilter: Sendable, Hashable {
    private enum Kind: Sendable, Hashable {
        case all, needsReauthorization
    }
    private let kind: Kind

    /// Every row.
    public static let all = ListFilter(kind: .all)
    /// Only rows whose refresh token the provider refused: their users must authorize again.
    public static let needsReauthorization = ListFilter(kind: .needsReauthorization)

    var onlyNeedingReauthorization: Bool { kind == .needsReauthorization }
}
