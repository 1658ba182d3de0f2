import Foundation

/// The parameters of a provider's redirect back to the app after the user's consent (RFC 6749 section 4.1.2),
/// for ``Vault/completeAuthorization(_:client:provider:)``. Prints without the code or the state.
///
/// ```swift
/// let callback = try AuthorizationCallback(parsing: request.uri.string)  // "/oauth/callback?code=…&state=…"
/// ```
public struct AuthorizationCallback: Sendable, CustomStringConvertible {
    /// `code`: the authorization code; nil when the provider sent an error instead.
    public var code: Secret?
    /// `state`: what ``Vault/beginAuthorization(client:provider:redirectURI:scopes:lifetime:)`` put in the URL.
    public var state: Secret?
    /// `error`, such as `access_denied` when the user declined; sanitised (letters, digits, `_`, `-`, at most 64).
    public var error: String?
    /// Zoho's `accounts-server`: the account's accounts server, such as `https://accounts.zoho.eu`. Checked against
    /// the provider's trusted servers before anything is sent to it.
    public var accountsServer: String?
    /// Zoho's `location`: the account's data centre (`us`, `eu`, …).
    public var location: String?
    /// The URL the callback arrived at, without its query, when it was parsed from a full URL; checked against
    /// the redirect URI the authorization was begun with.
    public var redirectURI: String?

    /// A callback from its parts.
    public init(
        code: Secret?, state: Secret?, error: String? = nil, accountsServer: String? = nil, location: String? = nil,
        redirectURI: String? = nil
    ) {
        self.code = code
        self.state = state
        self.error = error.map(TokenEndpointClient.sanitize)
        self.accountsServer = accountsServer
        self.location = location
        self.redirectURI = redirectURI
    }

    /// The longest callback accepted, in bytes.
    static let maximumBytes = 16_384

    /// Parses the callback URL the browser was sent to (`https://app.example/oauth/callback?code=…&state=…`), a
    /// path with its query (`/oauth/callback?code=…`), or the query string alone (`code=…&state=…`, with or
    /// without the `?`). Surrounding white space is ignored.
    /// - Throws: `.invalidInput` when the text is longer than 16 KiB, has a parameter twice, or holds neither a
    ///   `code` nor an `error`. The message never quotes a code or a state.
    public init(parsing text: String) throws(VaultError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count <= Self.maximumBytes else {
            throw VaultError(.invalidInput, "the callback is longer than \(Self.maximumBytes) bytes.")
        }
        var query = trimmed
        var base: String?
        let scheme = trimmed.prefix { $0.isLetter || $0.isNumber || "+.-".contains($0) }
        let isURL = !scheme.isEmpty && trimmed.dropFirst(scheme.count).hasPrefix("://")
        if isURL || trimmed.hasPrefix("/") {
            // A URL or a path: the query is what follows the first "?" (parameter values may hold "://").
            let mark = trimmed.firstIndex(of: "?")
            query = mark.map { String(trimmed[trimmed.index(after: $0)...]) } ?? ""
            if isURL { base = String(trimmed[..<(mark ?? trimmed.endIndex)]) }
        } else if trimmed.hasPrefix("?") {
            query = String(trimmed.dropFirst())
        }
        if let hash = query.firstIndex(of: "#") { query = String(query[..<hash]) }
        var fields: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0])
            guard fields[name] == nil else {
                throw VaultError(
                    .invalidInput,
                    "the callback has the parameter '\(OAuthProvider.shown(name))' twice; it is refused as tampered.")
            }
            fields[name] = parts.count > 1 ? Self.decode(parts[1]) : ""
        }
        let code = fields["code"].flatMap { $0.isEmpty ? nil : $0 }
        let error = fields["error"].flatMap { $0.isEmpty ? nil : $0 }
        guard code != nil || error != nil else {
            throw VaultError(
                .invalidInput,
                "the callback holds neither a code nor an error; give the whole URL the provider redirected to, or "
                    + "its query string.")
        }
        self.init(
            code: code.map(Secret.init), state: fields["state"].flatMap { $0.isEmpty ? nil : Secret($0) },
            error: error, accountsServer: fields["accounts-server"], location: fields["location"], redirectURI: base)
    }

    private static func decode(_ part: Substring) -> String {
        String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(part)
    }

    /// The fields, without the code and the state.
    public var description: String {
        "AuthorizationCallback(code: \(code == nil ? "nil" : "<redacted>"), state: "
            + "\(state == nil ? "nil" : "<redacted>"), error: \(error ?? "nil"), accountsServer: "
            + "\(accountsServer.map(OAuthProvider.shown) ?? "nil"), location: \(location.map(OAuthProvider.shown) ?? "nil"))"
    }
}
