import Foundation

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
