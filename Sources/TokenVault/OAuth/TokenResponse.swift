import Foundation

/// Parses a provider's token response (RFC 6749 section 5.1, with Zoho's variations) into a ``TokenSet``.
public enum TokenResponse {
    /// The most bytes a token response may have, from a provider or a person (1 MiB; a real one is under 2 KiB).
    public static let maximumBytes = 1 << 20

    /// The lifetime given to a provider's token whose `expires_in` is beyond ``TokenSet/longestLifetime``.
    static let lifetimeWhenOutOfRange: TimeInterval = 86_400

    /// Fields that are read as tokens or expiry and never copied into metadata.
    static let consumedKeys: Set<String> = ["access_token", "refresh_token", "expires_in", "expires_in_sec", "scope"]
    /// The fields of a response kept as the row's metadata unless a provider says otherwise
    /// (``OAuthProvider/metadataFields``): what Zoho sends besides its tokens, none of it a credential. Metadata is
    /// stored in plaintext, so fields are kept by name, never by guessing which look secret.
    public static let defaultMetadataFields: Set<String> = ["api_domain", "token_type"]

    /// ``droppedFields(of:keeping:)`` of a response body; none when it is not a JSON object.
    package static func droppedFields(in data: [UInt8]) -> [String] {
        guard let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(data)) else { return [] }
        return droppedFields(of: object)
    }

    /// The fields of `object` that are neither read (tokens, expiry, scope) nor kept as metadata, sorted: what a
    /// parse drops. Names only, for a note or a log line; values may be credentials.
    static func droppedFields(
        of object: [String: JSONValue], keeping metadataFields: Set<String> = defaultMetadataFields
    ) -> [String] {
        object.keys.filter { !consumedKeys.contains($0) && !metadataFields.contains($0) && $0 != "error" }.sorted()
    }

    /// Parses a JSON token response.
    ///
    /// - `access_token` and `refresh_token` are strings; `refresh_token` may be absent when `fallbackRefreshToken`
    ///   is given (a refresh that did not rotate it).
    /// - `expires_in` is seconds, except that when `expires_in_sec` is present it wins (some Zoho products send
    ///   `expires_in` in milliseconds then).
    /// - Of the other fields, those in `metadataFields` (``defaultMetadataFields``: `api_domain`, `token_type`) go
    ///   into metadata; the rest are dropped, since metadata is stored in plaintext.
    ///
    /// - Parameters:
    ///   - data: the response body, as received.
    ///   - now: when the response arrived; `expires_in` counts from it.
    ///   - fallbackRefreshToken: the refresh token to keep when the response has none.
    ///   - requireAccessToken: refuse a response without an access token.
    ///   - metadataFields: the fields kept as metadata; the others are dropped.
    /// - Throws: `.invalidInput` when the body is not a JSON object, is an OAuth error (`{"error": …}`), lacks a
    ///   token it needs, or holds a field of the wrong type, a token with a control character, or a NUL
    ///   character that PostgreSQL cannot store.
    public static func parse(
        _ data: [UInt8], receivedAt now: Date = Date(), fallbackRefreshToken: Secret? = nil,
        requireAccessToken: Bool = false, metadataFields: Set<String> = defaultMetadataFields
    ) throws(VaultError) -> TokenSet {
        guard data.count <= maximumBytes else {
            throw VaultError(
                .invalidInput, "the token response is \(data.count) bytes, more than the \(maximumBytes) it may have.")
        }
        let object: [String: JSONValue]
        do {
            object = try JSONDecoder().decode([String: JSONValue].self, from: Data(data))
        } catch {
            throw VaultError(
                .invalidInput,
                "the token response is not a JSON object (or not valid JSON); expected {\"access_token\": …, \"refresh_token\": …, "
                    + "\"expires_in\": …}.")
        }
        return try parse(
            object: object, receivedAt: now, fallbackRefreshToken: fallbackRefreshToken,
            requireAccessToken: requireAccessToken, metadataFields: metadataFields)
    }

    /// Parses an already decoded token response object.
    /// - Parameter strict: refuse what PostgreSQL cannot store (a NUL character in the scope or the metadata), as
    ///   for input a person gave; false for a provider's answer, whose tokens must be kept (see
    ///   ``TokenSet/removingNULs()``).
    static func parse(
        object: [String: JSONValue], receivedAt now: Date, fallbackRefreshToken: Secret? = nil,
        requireAccessToken: Bool = false, strict: Bool = true, metadataFields: Set<String> = defaultMetadataFields
    ) throws(VaultError) -> TokenSet {
        if let error = object["error"]?.stringValue {
            throw VaultError(
                .invalidInput,
                "the token response is an error (\(TokenEndpointClient.sanitize(error))), not tokens: store the "
                    + "provider's successful answer (access_token, refresh_token, …), or authorize again for a new one."
            )
        }
        let access = try secretField("access_token", in: object)
        if requireAccessToken && access == nil {
            throw VaultError(.invalidInput, "the token response has no access_token.")
        }
        guard let refresh = try secretField("refresh_token", in: object) ?? fallbackRefreshToken else {
            throw VaultError(
                .invalidInput,
                "the token response has no refresh_token; the vault needs one to renew the access token. "
                    + "Authorize with offline access (Zoho: access_type=offline) to get one.")
        }
        var lifetime: Double?
        if let seconds = object["expires_in_sec"] {
            guard let value = seconds.numberValue else {
                throw VaultError(.invalidInput, "expires_in_sec in the token response is not a number.")
            }
            lifetime = value
        } else if let seconds = object["expires_in"] {
            guard let value = seconds.numberValue else {
                throw VaultError(.invalidInput, "expires_in in the token response is not a number.")
            }
            lifetime = value
        }
        if let lifetime, lifetime < 0 || !lifetime.isFinite {
            throw VaultError(.invalidInput, "the token response has a negative or invalid expires_in.")
        }
        if let value = lifetime, value > TokenSet.longestLifetime {
            // A person's input is refused. A provider's answer is kept, its tokens (a rotated refresh token exists
            // nowhere else) with a day's lifetime: the token is then refreshed in a day, not never.
            guard !strict else {
                throw VaultError(
                    .invalidInput,
                    "expires_in in the token response is \(value) seconds, more than ten years; it counts seconds "
                        + "(Zoho sends 3600).")
            }
            lifetime = Self.lifetimeWhenOutOfRange
        }
        var scopes: String?
        if let scope = object["scope"], scope != .null {
            guard let value = scope.stringValue else {
                throw VaultError(.invalidInput, "scope in the token response is not a string.")
            }
            scopes = value
        }
        var metadata: [String: JSONValue] = [:]
        for key in metadataFields where !consumedKeys.contains(key) {
            if let value = object[key] { metadata[key] = value }
        }
        let tokens = TokenSet(
            accessToken: access, refreshToken: refresh,
            expiresAt: lifetime.map { now.addingTimeInterval($0) }, scopes: scopes, metadata: metadata)
        if strict { try tokens.checkStorable() }  // refused here, naming the input line, rather than when stored
        return tokens
    }

    private static func secretField(_ name: String, in object: [String: JSONValue]) throws(VaultError) -> Secret? {
        guard let value = object[name] else { return nil }
        if case .null = value { return nil }
        guard let string = value.stringValue, !string.isEmpty else {
            throw VaultError(.invalidInput, "\(name) in the token response is not a non-empty string.")
        }
        // RFC 6749 (appendix A) allows printable ASCII only (VSCHAR, %x20-7E). A control character (a NUL, a line
        // break) would be handed back by `token-vault token` and could inject a header into a script's HTTP
        // request; a non-ASCII character cannot go into an HTTP header as it is, and could be a look-alike.
        for byte in string.utf8 where byte < 0x20 || byte > 0x7e {
            throw VaultError(
                .invalidInput,
                byte >= 0x80
                    ? "\(name) in the token response holds a non-ASCII character; OAuth tokens are printable ASCII "
                        + "only (RFC 6749, appendix A)."
                    : "\(name) in the token response holds a control character (such as a line break or NUL); "
                        + "OAuth tokens are printable ASCII only (RFC 6749, appendix A).")
        }
        return Secret(string)
    }
}
