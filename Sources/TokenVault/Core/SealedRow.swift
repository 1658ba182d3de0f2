import Foundation

/// A row of `oauth_tokens` as stored: secrets still sealed. Made by Crypto (sealing) and Storage (reading); opened
/// by Crypto. Holds no plaintext.
package struct SealedRow: Sendable {
    package var clientID: String
    var provider: String
    var accessToken: SealedValue?
    package var refreshToken: SealedValue
    var keyID: KeyID
    /// Seconds since 1970.
    var expiresAt: Double?
    var scopes: String?
    var metadataJSON: String
    var createdAt: Double
    var updatedAt: Double
    var version: Int64
    /// The provider refused the refresh token; nothing is refreshed until new tokens are stored.
    var needsReauthorization = false
    var lastRefreshError: String?
    var lastRefreshedAt: Double?
    /// The account's own accounts server (an origin such as `https://accounts.zoho.eu`), for providers with one per
    /// data centre; nil: the provider's configured default. Not secret.
    var accountsServer: String?

    /// Whether the access token is usable for more than `margin` seconds, decided before anything is opened.
    func isAccessTokenValid(margin: Double, now: Double = Date().timeIntervalSince1970) -> Bool {
        Self.isAccessTokenValid(present: accessToken != nil, expiresAt: expiresAt, margin: margin, now: now)
    }

    /// The rule for every form of a row, sealed or opened: there is an access token, and it expires more than
    /// `margin` seconds after `now` (or never). Times in seconds since 1970.
    static func isAccessTokenValid(present: Bool, expiresAt: Double?, margin: Double, now: Double) -> Bool {
        guard present else { return false }
        guard let expiresAt else { return true }
        return expiresAt - now > margin
    }

    package init(
        clientID: String, provider: String, accessToken: SealedValue?, refreshToken: SealedValue, keyID: KeyID,
        expiresAt: Double?, scopes: String?, metadataJSON: String
    ) {
        self.clientID = clientID
        self.provider = provider
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.keyID = keyID
        self.expiresAt = expiresAt
        self.scopes = scopes
        self.metadataJSON = metadataJSON
        createdAt = 0
        updatedAt = 0
        version = 0
    }
}
