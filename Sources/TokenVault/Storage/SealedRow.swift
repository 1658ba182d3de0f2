import Foundation

/// A row of `oauth_tokens` as stored: secrets still sealed.
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
    /// When the provider was asked for a refresh, seconds since 1970 (only read by `selectForRefresh`).
    var refreshHistory: [Double] = []

    /// Whether the access token is usable for more than `margin` seconds (the rule of
    /// `StoredTokens.isAccessTokenValid`, applied before anything is opened).
    func isAccessTokenValid(margin: Double, now: Double = Date().timeIntervalSince1970) -> Bool {
        guard accessToken != nil else { return false }
        guard let expiresAt else { return true }
        return expiresAt - now > margin
    }

    /// The column list that `init(result:row:)` decodes, in order.
    static let columns = """
        client_id, provider, access_token_ciphertext, access_token_nonce, refresh_token_ciphertext, \
        refresh_token_nonce, key_id, token_expiry, scopes, metadata::text, created_at, updated_at, version, \
        needs_reauthorization, last_refresh_error, last_refreshed_at
        """

    /// `columns` and the refresh history, as comma-separated microseconds since 1970.
    static let refreshColumns = """
        \(columns), array_to_string(ARRAY(SELECT (extract(epoch FROM t) * 1000000)::bigint \
        FROM unnest(refresh_history) t), ',')
        """

    package init(result: PGResult, row: Int) {
        clientID = result.string(row, 0) ?? ""
        provider = result.string(row, 1) ?? ""
        if let ciphertext = result.bytes(row, 2), let nonce = result.bytes(row, 3) {
            accessToken = SealedValue(ciphertext: ciphertext, nonce: nonce)
        }
        refreshToken = SealedValue(ciphertext: result.bytes(row, 4) ?? [], nonce: result.bytes(row, 5) ?? [])
        keyID = KeyID(rawValue: result.string(row, 6) ?? "")
        expiresAt = result.timestamp(row, 7)
        scopes = result.string(row, 8)
        metadataJSON = result.string(row, 9) ?? "{}"
        createdAt = result.timestamp(row, 10) ?? 0
        updatedAt = result.timestamp(row, 11) ?? 0
        version = result.integer(row, 12) ?? 0
        needsReauthorization = result.bool(row, 13) ?? false
        lastRefreshError = result.string(row, 14)
        lastRefreshedAt = result.timestamp(row, 15)
        if result.columnCount > 16, let history = result.string(row, 16) {
            refreshHistory = history.split(separator: ",").compactMap { Double($0).map { $0 / 1_000_000 } }
        }
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

/// Timestamps travel as whole microseconds since 1970 and are turned into timestamptz by the SQL.
func microsecondsParameter(_ seconds: Double?) -> SQLValue {
    guard let seconds else { return .null }
    return .text(String(Int64((seconds * 1_000_000).rounded())))
}

/// `$n` as a timestamptz from microseconds since 1970 (exact, unlike `to_timestamp(float8)`).
func timestampFromMicroseconds(_ placeholder: String) -> String {
    "('epoch'::timestamptz + \(placeholder)::bigint * interval '1 microsecond')"
}
