import Foundation

/// Tokens to store for one (client, provider): what an authorization or a refresh returned.
public struct TokenSet: Sendable, Equatable, CustomStringConvertible {
    /// May be nil when only a refresh token is known; the first `accessToken` call then refreshes.
    public var accessToken: Secret?
    public var refreshToken: Secret
    /// When the access token stops working.
    public var expiresAt: Date?
    /// As the provider sent them (space- or comma-separated).
    public var scopes: String?
    /// Provider data that is not secret, such as Zoho's `api_domain`.
    public var metadata: [String: JSONValue]

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

/// Tokens as stored and opened.
public struct StoredTokens: Sendable, CustomStringConvertible {
    public let clientID: String
    public let provider: String
    public let accessToken: Secret?
    public let refreshToken: Secret
    public let expiresAt: Date?
    public let scopes: String?
    let metadataJSON: String
    /// Provider data such as Zoho's `api_domain` (decoded from the `metadata` column on access).
    public var metadata: [String: JSONValue] { JSONValue.parseObject(metadataJSON) }
    public let keyID: KeyID
    public let createdAt: Date
    public let updatedAt: Date
    /// Incremented by every write to the row.
    public let version: Int64

    /// Whether the access token is usable for at least `margin` more seconds at `now`.
    public func isAccessTokenValid(margin: TimeInterval, now: Date = Date()) -> Bool {
        guard accessToken != nil else { return false }
        guard let expiresAt else { return true }
        return expiresAt.timeIntervalSince(now) > margin
    }

    public var description: String {
        "StoredTokens(client: \(clientID), provider: \(provider), accessToken: "
            + "\(accessToken == nil ? "nil" : "<redacted>"), refreshToken: <redacted>, "
            + "expiresAt: \(expiresAt.map { "\($0)" } ?? "nil"), keyID: \(keyID), version: \(version))"
    }
}

/// A row without its secrets, for listings.
public struct TokenSummary: Sendable, Equatable, Codable {
    public let clientID: String
    public let provider: String
    public let keyID: KeyID
    public let expiresAt: Date?
    public let scopes: String?
    public let hasAccessToken: Bool
    public let createdAt: Date
    public let updatedAt: Date
    public let version: Int64
}
