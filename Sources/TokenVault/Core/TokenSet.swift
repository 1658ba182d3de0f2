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

    /// Tokens you already hold; ``TokenResponse/parse(_:receivedAt:fallbackRefreshToken:requireAccessToken:metadataFields:)``
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
        try checkSizes()
        try checkExpiry()
        let json = try JSONValue.serializeForStorage(metadata)
        guard json.utf8.count <= Self.maximumMetadataBytes else { throw Self.metadataTooLarge(json.utf8.count) }
        return json
    }

    /// `storableMetadataJSON`'s checks, but for the metadata's size, without writing the JSON (parsing calls it on
    /// every line of an import; the size is checked when the row is sealed).
    func checkStorable() throws(VaultError) {
        try checkScopesStorable()
        try checkSizes()
        try checkExpiry()
        if JSONValue.containsNUL(metadata) { throw JSONValue.nulInMetadata }
    }

    /// Refuses a token or scopes larger than the limits above.
    private func checkSizes() throws(VaultError) {
        // Two plain calls, not a loop over an array of both: this runs on every store.
        if let accessToken { try Self.checkSize(of: accessToken, "access_token") }
        try Self.checkSize(of: refreshToken, "refresh_token")
        if let scopes, scopes.utf8.count > Self.maximumScopesBytes {
            throw VaultError(
                .invalidInput,
                "the scopes are \(scopes.utf8.count) bytes, more than the \(Self.maximumScopesBytes) they may have.")
        }
    }

    private static func checkSize(of token: Secret, _ name: StaticString) throws(VaultError) {
        let count = token.count
        guard count > 0, count <= maximumTokenBytes else {
            throw VaultError(
                .invalidInput,
                count == 0
                    ? "the \(name) is empty."
                    : "the \(name) is \(count) bytes, more than the \(maximumTokenBytes) a token may have.")
        }
        // Tokens are text: the row stores their UTF-8 bytes, and opening refuses anything else.
        guard token.isValidUTF8 else {
            throw VaultError(
                .invalidInput, "the \(name) is not UTF-8 text; make its Secret from the token's String.")
        }
    }

    static func metadataTooLarge(_ bytes: Int) -> VaultError {
        VaultError(
            .invalidInput,
            "the metadata is \(bytes) bytes of JSON, more than the \(maximumMetadataBytes) it may have; store only "
                + "provider data such as api_domain.")
    }

    /// Whether the metadata, as stored JSON, is larger than it may be (a provider's answer then keeps its tokens
    /// without it).
    var metadataIsTooLarge: Bool {
        JSONValue.serialize(metadata).utf8.count > Self.maximumMetadataBytes
    }

    /// The most bytes an access or refresh token may have. OAuth tokens are a few hundred bytes; signed JWTs a few
    /// thousand. Anything larger is refused: every later read of the row would carry it.
    public static let maximumTokenBytes = 16 * 1024
    /// The most bytes the scopes, and the metadata as stored JSON, may have (Zoho's `api_domain` and `token_type`
    /// take under a hundred).
    public static let maximumScopesBytes = 16 * 1024
    /// See ``maximumScopesBytes``.
    public static let maximumMetadataBytes = 64 * 1024

    /// The longest an access token is believed to live: ten years. A provider's `expires_in` beyond it is a unit
    /// mistake or an attack, and an expiry that far away would never be refreshed.
    static let longestLifetime: TimeInterval = 10 * 365.25 * 86_400

    /// ``longestLifetime`` after the process started: a bound every later "now" only widens.
    private static let latestExpiryAtStart = Date().timeIntervalSince1970 + longestLifetime

    /// Refuses an expiry before 1970, more than ``longestLifetime`` from now, or not a number: such a date cannot
    /// be stored exactly (it traps when turned into microseconds) and would never be refreshed.
    func checkExpiry(now: Date? = nil) throws(VaultError) {
        guard let expiresAt else { return }
        let seconds = expiresAt.timeIntervalSince1970
        // Most expiries are well inside the bound as of the process's start, which costs no clock read per store.
        if now == nil, seconds >= 0, seconds <= Self.latestExpiryAtStart { return }
        let latest = (now ?? Date()).timeIntervalSince1970 + Self.longestLifetime
        guard seconds.isFinite, seconds >= 0, seconds <= latest else {
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
