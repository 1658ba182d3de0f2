import Foundation

/// Each account's own accounts server (Zoho's data centres): which servers are trusted, and the provider as seen
/// from one of them. A server comes from outside (a callback's parameters, an argument, a stored row) and is
/// checked here every time, before anything is sent: a token or the client secret goes only to a server in
/// ``OAuthProvider/accountsServers``.
extension OAuthProvider {
    /// The origin (`scheme://host[:port]`, lower case) of `url`; nil unless it is an http(s) URL with a host and
    /// nothing that a plain server address does not have (user, password, query, fragment, a path other than `/`).
    static func origin(of url: URL) -> String? {
        guard let parts = URLComponents(url: url, resolvingAgainstBaseURL: false),
            let scheme = parts.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = parts.percentEncodedHost?.lowercased(), !host.isEmpty,
            parts.user == nil, parts.password == nil, parts.query == nil, parts.fragment == nil
        else { return nil }
        return parts.port.map { "\(scheme)://\(host):\($0)" } ?? "\(scheme)://\(host)"
    }

    /// The trusted servers' origins.
    var trustedOrigins: Set<String> {
        Set(accountsServers.values.compactMap { Self.origin(of: $0.deletingPath) })
    }

    /// The account's accounts server as named by a callback's `accounts-server` and `location` (or the CLI's
    /// `--accounts-server` and `--data-center`), checked: the origin to store with the row, or nil when neither is
    /// given (the provider's default).
    ///
    /// - Throws: `.accountsServerRefused` when the server is not one of ``accountsServers`` (exactly: scheme, host
    ///   and port), is not a plain server address, the location is not one of their names, the two disagree, or
    ///   the provider has a single server and one is named anyway. Nothing is sent anywhere.
    func resolveAccountsServer(_ server: String?, location: String?) throws(VaultError) -> String? {
        let server = server.flatMap { $0.isEmpty ? nil : $0 }
        let location = location.flatMap { $0.isEmpty ? nil : $0 }
        guard !accountsServers.isEmpty else {
            if server != nil {
                throw VaultError(
                    .accountsServerRefused,
                    "provider '\(name)' has a single server; an accounts server was named for it and refused.")
            }
            return nil
        }
        var fromLocation: String?
        if let location {
            guard let url = accountsServers[location.lowercased()], let origin = Self.origin(of: url.deletingPath)
            else {
                throw VaultError(
                    .accountsServerRefused,
                    "the location '\(Self.shown(location))' is not a data centre of provider '\(name)' (known: "
                        + "\(accountsServers.keys.sorted().joined(separator: ", "))).")
            }
            fromLocation = origin
        }
        guard let server else { return fromLocation }
        guard let url = URL(string: server), let origin = Self.origin(of: url),
            url.path.isEmpty || url.path == "/", trustedOrigins.contains(origin)
        else {
            throw VaultError(
                .accountsServerRefused,
                "the accounts server '\(Self.shown(server))' is not one that provider '\(name)' trusts; the vault "
                    + "sends tokens and the client secret only to its known accounts servers.")
        }
        if let fromLocation, fromLocation != origin {
            throw VaultError(
                .accountsServerRefused,
                "the accounts server '\(Self.shown(server))' is not the server of location "
                    + "'\(Self.shown(location ?? ""))' for provider '\(name)'.")
        }
        return origin
    }

    /// The default accounts server's origin (that of ``tokenURL``) for a provider with one per data centre; nil
    /// for a provider with a single server. Stored with an account connected at the default, so that the account
    /// stays where its tokens came from.
    var defaultAccountsServer: String? {
        accountsServers.isEmpty ? nil : Self.origin(of: tokenURL.deletingPath)
    }

    /// This provider as seen from `server` (an origin stored with a row, or nil for the default): its token,
    /// authorization and revocation URLs moved to that server.
    /// - Throws: `.accountsServerRefused` when `server` is not one of ``accountsServers`` (a row written under
    ///   another configuration, or tampered with); nothing is sent to it.
    func at(accountsServer server: String?) throws(VaultError) -> OAuthProvider {
        guard let server else { return self }
        guard let url = URL(string: server), let origin = Self.origin(of: url), trustedOrigins.contains(origin)
        else {
            throw VaultError(
                .accountsServerRefused,
                "the stored accounts server '\(Self.shown(server))' is not one that provider '\(name)' trusts in this "
                    + "configuration; nothing was sent to it.")
        }
        var moved = self
        moved.tokenURL = Self.move(tokenURL, to: url)
        moved.authorizationURL = authorizationURL.map { Self.move($0, to: url) }
        moved.revocationURL = revocationURL.map { Self.move($0, to: url) }
        return moved
    }

    /// `url` with the scheme, host and port of `server`.
    private static func move(_ url: URL, to server: URL) -> URL {
        guard var parts = URLComponents(url: url, resolvingAgainstBaseURL: false),
            let target = URLComponents(url: server, resolvingAgainstBaseURL: false)
        else { return url }
        parts.scheme = target.scheme
        parts.percentEncodedHost = target.percentEncodedHost
        parts.port = target.port
        return parts.url ?? url
    }

    /// Untrusted text quoted in a message: short, printable ASCII only.
    static func shown(_ text: String) -> String {
        String(text.prefix(100).unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7f }.map(Character.init))
    }
}

extension URL {
    /// The URL without its path (scheme, host and port only), for comparing servers.
    fileprivate var deletingPath: URL {
        guard var parts = URLComponents(url: self, resolvingAgainstBaseURL: false) else { return self }
        parts.path = ""
        parts.query = nil
        parts.fragment = nil
        return parts.url ?? self
    }
}
