import Foundation

/// An authorization begun by ``Vault/beginAuthorization(client:provider:redirectURI:scopes:lifetime:)``: where to
/// send the user. Prints without the state.
public struct AuthorizationRequest: Sendable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The provider's authorization URL with `state` and the PKCE `code_challenge`: redirect the user's browser
    /// here. It holds no secret the provider does not see anyway, but its state lets whoever holds it complete
    /// the authorization: do not log it.
    public let url: URL
    /// The `state` in ``url``. A web service may also bind it to the user's session (a cookie) and compare it
    /// with the callback's before completing.
    public let state: Secret
    /// The client the tokens will be stored for.
    public let client: String
    /// The provider the tokens will be stored under.
    public let provider: String
    /// The redirect URI the provider will send the user back to.
    public let redirectURI: String
    /// When the state stops being accepted (on this host's clock; the database's decides).
    public let expiresAt: Date

    /// The fields, with the URL's query and the state redacted.
    public var description: String {
        var parts = URLComponents(url: url, resolvingAgainstBaseURL: false)
        parts?.query = nil
        return "AuthorizationRequest(url: \(parts?.url?.absoluteString ?? "?")?<redacted>, client: \(client), "
            + "provider: \(provider), redirectURI: \(redirectURI), expiresAt: \(expiresAt))"
    }

    /// The same as ``description``: the URL's query holds the state.
    public var debugDescription: String { description }

    /// What `dump` and debuggers show: the fields, with the URL's query and the state redacted.
    public var customMirror: Mirror {
        var parts = URLComponents(url: url, resolvingAgainstBaseURL: false)
        parts?.query = nil
        return Mirror(
            self,
            children: [
                "url": "\(parts?.url?.absoluteString ?? "?")?<redacted>", "state": "<redacted>", "client": client,
                "provider": provider, "redirectURI": redirectURI, "expiresAt": expiresAt,
            ], displayStyle: .struct)
    }
}

/// An account connected by ``Vault/completeAuthorization(_:client:provider:)``.
public struct ConnectedAccount: Sendable, CustomStringConvertible {
    /// The client the tokens were stored for, as the authorization was begun.
    public let client: String
    /// The provider the tokens were stored under.
    public let provider: String
    /// The account's own accounts server, stored with the row (Zoho's data centres: the callback's, else the
    /// default data centre's, where the code was exchanged); nil for a provider with a single server.
    public let accountsServer: String?
    /// The access token the exchange returned.
    public let accessToken: AccessToken

    /// The fields, without the token.
    public var description: String {
        "ConnectedAccount(client: \(client), provider: \(provider), accountsServer: \(accountsServer ?? "nil"))"
    }
}
