import Foundation

/// An OAuth 2.0 (RFC 6749) token endpoint and the app's credentials for it.
public struct OAuthProvider: Sendable, CustomStringConvertible {
    /// How the app authenticates to the token endpoint (RFC 6749 section 2.3.1).
    public enum ClientAuthentication: Sendable {
        /// `client_id` and `client_secret` in the form body (what Zoho expects).
        case requestBody
        /// HTTP Basic with the URL-encoded id and secret.
        case httpBasic
    }

    /// At most `count` refreshes per refresh token within `window` seconds (Zoho: 10 per 600).
    public struct RateLimit: Sendable, Equatable {
        /// The most refreshes allowed within ``window``; at least 1.
        public var count: Int
        /// The length of the sliding window, in seconds (more than 0, at most a day).
        public var window: TimeInterval
        /// A limit of `count` refreshes per `window` seconds; ``VaultConfiguration/validate()`` checks the range.
        public init(count: Int, window: TimeInterval) {
            self.count = count
            self.window = window
        }
    }

    /// The name rows are stored under, e.g. `zoho_crm`.
    public var name: String
    /// The token endpoint that refreshes and exchanges codes, such as `https://accounts.zoho.eu/oauth/v2/token`.
    public var tokenURL: URL
    /// The app's client id, as the provider's developer console shows it.
    public var clientID: String
    /// The app's client secret; prints as `<redacted>`.
    public var clientSecret: Secret
    /// Where the client id and secret go in a token request.
    public var clientAuthentication: ClientAuthentication
    /// Refreshes beyond this limit fail with `.rateLimited` instead of calling the provider. nil: no limit.
    public var refreshRateLimit: RateLimit?
    /// A refresh token to use when no row exists for a client, such as a Zoho self-client's; the tokens it
    /// yields are stored, and the row's refresh token is used from then on.
    public var fallbackRefreshToken: Secret?
    /// Sent with `authorization_code` exchanges when set.
    public var redirectURI: String?
    /// The fields of this provider's token responses kept as the row's metadata (stored in plaintext); the others
    /// are dropped and their names logged. Default: ``TokenResponse/defaultMetadataFields``.
    public var metadataFields: Set<String> = TokenResponse.defaultMetadataFields
    /// The authorization endpoint users are sent to (RFC 6749 section 3.1), such as
    /// `https://accounts.zoho.com/oauth/v2/auth`; ``Vault/beginAuthorization(client:provider:redirectURI:scopes:lifetime:)``
    /// needs it.
    public var authorizationURL: URL?
    /// The token revocation endpoint (RFC 7009), such as `https://accounts.zoho.com/oauth/v2/token/revoke`;
    /// ``Vault/delete(client:provider:revoke:)`` needs it to revoke.
    public var revocationURL: URL?
    /// Parameters added to every authorization URL, such as Zoho's `access_type=offline` and `prompt=consent`
    /// (what makes Zoho issue a refresh token every time).
    public var authorizationParameters: [String: String] = [:]
    /// What joins scopes in the authorization URL: a space (RFC 6749, the default) or a comma (Zoho).
    public var scopeSeparator = " "
    /// Whether a revocation request also carries the token in its URL's query (`?token=…`), besides the form body
    /// that RFC 7009 specifies. Off by default, also for Zoho (which documents `?token=` but reads form parameters,
    /// as its token endpoint does for every refresh): a URL is more often logged than a body, and some RFC 7009
    /// servers refuse a query on a POST.
    public var revocationTokenInQuery = false
    /// For a provider with an accounts server per data centre (Zoho): the trusted servers by location name
    /// (`us`, `eu`, …; an origin such as `https://accounts.zoho.eu` each). A row, a callback or an exchange may name
    /// one of these and no other: its token, revocation and authorization URLs are then those of ``tokenURL``,
    /// ``revocationURL`` and ``authorizationURL`` moved to that server. Empty (the default): the provider has one
    /// server, and naming another is refused.
    public var accountsServers: [String: URL] = [:]

    /// A provider; ``zoho(_:dataCenter:clientID:clientSecret:accountsURL:fallbackRefreshToken:accountsServerOverrides:)`` fills in
    /// Zoho's endpoint and rate limit.
    public init(
        name: String, tokenURL: URL, clientID: String, clientSecret: Secret,
        clientAuthentication: ClientAuthentication = .requestBody, refreshRateLimit: RateLimit? = nil,
        fallbackRefreshToken: Secret? = nil, redirectURI: String? = nil
    ) {
        self.name = name
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.clientAuthentication = clientAuthentication
        self.refreshRateLimit = refreshRateLimit
        self.fallbackRefreshToken = fallbackRefreshToken
        self.redirectURI = redirectURI
    }

    public var description: String {
        "OAuthProvider(name: \(name), tokenURL: \(tokenURL), clientID: \(clientID), clientSecret: <redacted>)"
    }
}

/// Zoho's data centres: each has its own accounts server (token endpoint) and API domain.
public enum ZohoDataCenter: String, Sendable, CaseIterable {
    // The raw value is the data centre's short name, as `ZOHO_DATA_CENTER` takes it and Zoho's `location` gives it.
    /// United States: accounts.zoho.com.
    case us
    /// Europe: accounts.zoho.eu.
    case eu
    /// India: accounts.zoho.in.
    case india = "in"
    /// Australia: accounts.zoho.com.au.
    case australia = "au"
    /// Japan: accounts.zoho.jp.
    case japan = "jp"
    /// Canada: accounts.zohocloud.ca (not .ca).
    case canada = "ca"
    /// Saudi Arabia: accounts.zoho.sa.
    case saudiArabia = "sa"
    /// China: accounts.zoho.com.cn.
    case china = "cn"
    /// United Kingdom: accounts.zoho.uk.
    case unitedKingdom = "uk"

    /// The accounts host; the token endpoint is `https://<host>/oauth/v2/token`.
    public var accountsHost: String {
        switch self {
        case .us: return "accounts.zoho.com"
        case .eu: return "accounts.zoho.eu"
        case .india: return "accounts.zoho.in"
        case .australia: return "accounts.zoho.com.au"
        case .japan: return "accounts.zoho.jp"
        case .canada: return "accounts.zohocloud.ca"
        case .saudiArabia: return "accounts.zoho.sa"
        case .china: return "accounts.zoho.com.cn"
        case .unitedKingdom: return "accounts.zoho.uk"
        }
    }

    /// Where the APIs live (Zoho also returns it as `api_domain` with every token).
    public var apiDomain: String {
        switch self {
        case .us: return "https://www.zohoapis.com"
        case .eu: return "https://www.zohoapis.eu"
        case .india: return "https://www.zohoapis.in"
        case .australia: return "https://www.zohoapis.com.au"
        case .japan: return "https://www.zohoapis.jp"
        case .canada: return "https://www.zohoapis.ca"
        case .saudiArabia: return "https://www.zohoapis.sa"
        case .china: return "https://www.zohoapis.com.cn"
        case .unitedKingdom: return "https://www.zohoapis.uk"
        }
    }
}

extension OAuthProvider {
    /// The Zoho products with presets.
    public static let zohoProducts = ["zoho_crm", "zoho_calendar"]

    /// A Zoho provider: token, authorization and revocation endpoints of the data centre (or `accountsURL`),
    /// credentials in the body, Zoho's limit of 10 refreshes per refresh token per 10 minutes, and every data
    /// centre's accounts server trusted for accounts that live there (``accountsServers``), each replaced by its
    /// entry in `accountsServerOverrides` when it has one (a test endpoint; `accountsURL` is the override of
    /// `dataCenter`).
    public static func zoho(
        _ name: String, dataCenter: ZohoDataCenter = .us, clientID: String, clientSecret: Secret,
        accountsURL: URL? = nil, fallbackRefreshToken: Secret? = nil,
        accountsServerOverrides: [ZohoDataCenter: URL] = [:]
    ) -> OAuthProvider {
        let base =
            accountsURL ?? accountsServerOverrides[dataCenter] ?? URL(string: "https://\(dataCenter.accountsHost)")!
        var provider = OAuthProvider(
            name: name, tokenURL: base.appendingPathComponent("oauth/v2/token"), clientID: clientID,
            clientSecret: clientSecret, clientAuthentication: .requestBody,
            refreshRateLimit: RateLimit(count: 10, window: 600), fallbackRefreshToken: fallbackRefreshToken)
        provider.authorizationURL = base.appendingPathComponent("oauth/v2/auth")
        provider.revocationURL = base.appendingPathComponent("oauth/v2/token/revoke")
        provider.authorizationParameters = ["access_type": "offline", "prompt": "consent"]
        provider.scopeSeparator = ","
        for center in ZohoDataCenter.allCases {
            provider.accountsServers[center.rawValue] =
                accountsServerOverrides[center] ?? URL(string: "https://\(center.accountsHost)")!
        }
        provider.accountsServers[dataCenter.rawValue] = base
        return provider
    }

    /// Environment variables read by `zohoFromEnvironment`.
    public enum ZohoVariable {
        /// `ZOHO_CLIENT_ID`: the app's client id; without it no Zoho provider is configured.
        public static let clientID = "ZOHO_CLIENT_ID"
        /// `ZOHO_CLIENT_SECRET`: the app's client secret; this or ``clientSecretFile`` is required with ``clientID``.
        public static let clientSecret = "ZOHO_CLIENT_SECRET"
        /// `ZOHO_CLIENT_SECRET_FILE`: a file holding the client secret, so that it need not sit in the process
        /// environment; readable by its owner only (0600, or 0640 when root owns it), like the key file.
        public static let clientSecretFile = "ZOHO_CLIENT_SECRET_FILE"
        /// `ZOHO_DATA_CENTER`: a ``ZohoDataCenter`` raw value (`us`, `eu`, `in`, …); default `us`. The data
        /// centre of accounts whose row names no accounts server of its own.
        public static let dataCenter = "ZOHO_DATA_CENTER"
        /// `ZOHO_ACCOUNTS_URL`: an http(s) accounts server that replaces the data centre's, such as a test endpoint.
        public static let accountsURL = "ZOHO_ACCOUNTS_URL"
        /// `ZOHO_ACCOUNTS_URL_EU`, `ZOHO_ACCOUNTS_URL_US`, …: this prefix and a data centre's name in capitals
        /// replace that data centre's accounts server, such as with a test endpoint per data centre.
        public static let accountsURLPrefix = "ZOHO_ACCOUNTS_URL_"
        /// `ZOHO_REFRESH_TOKEN`: a fallback refresh token for clients that have no row yet; optional.
        public static let refreshToken = "ZOHO_REFRESH_TOKEN"
    }

    /// `zoho_crm` and `zoho_calendar` from `ZOHO_CLIENT_ID`, `ZOHO_CLIENT_SECRET`, `ZOHO_DATA_CENTER`
    /// (us, eu, in, au, jp, ca, sa, cn, uk; default us), `ZOHO_ACCOUNTS_URL` (overrides the accounts server),
    /// `ZOHO_ACCOUNTS_URL_<DC>` (overrides one data centre's) and
    /// `ZOHO_REFRESH_TOKEN` (fallback when no row exists). None when `ZOHO_CLIENT_ID` is unset.
    ///
    /// - Throws: `.providerConfiguration` when only one of the client id and secret is set, or the data centre or
    ///   accounts URL is not valid. Messages never echo the secret.
    public static func zohoFromEnvironment(_ environment: [String: String]) throws(VaultError) -> [OAuthProvider] {
        let value = { (name: String) in environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let secretText = value(ZohoVariable.clientSecret)
        let secretFile = value(ZohoVariable.clientSecretFile)
        guard let clientID = value(ZohoVariable.clientID) else {
            if secretText != nil || secretFile != nil {
                throw VaultError(
                    .providerConfiguration,
                    "\(secretText != nil ? ZohoVariable.clientSecret : ZohoVariable.clientSecretFile) is set but "
                        + "\(ZohoVariable.clientID) is not; set both.")
            }
            return []
        }
        let secret: Secret
        switch (secretText, secretFile) {
        case (let text?, nil):
            secret = Secret(text)
        case (nil, let path?):
            secret = try Secret(contentsOfFile: path, variable: ZohoVariable.clientSecretFile)
        case (_?, _?):
            throw VaultError(
                .providerConfiguration,
                "both \(ZohoVariable.clientSecret) and \(ZohoVariable.clientSecretFile) are set; set exactly one (the "
                    + "file keeps the secret out of the process environment).")
        case (nil, nil):
            throw VaultError(
                .providerConfiguration,
                "\(ZohoVariable.clientID) is set but neither \(ZohoVariable.clientSecret) nor "
                    + "\(ZohoVariable.clientSecretFile) is; set one (Zoho API console, Client Secret).")
        }
        var dataCenter = ZohoDataCenter.us
        if let name = value(ZohoVariable.dataCenter) {
            guard let parsed = ZohoDataCenter(rawValue: name.lowercased()) else {
                let names = ZohoDataCenter.allCases.map(\.rawValue).joined(separator: ", ")
                throw VaultError(
                    .providerConfiguration, "\(ZohoVariable.dataCenter) must be one of \(names), not '\(name)'.")
            }
            dataCenter = parsed
        }
        func serverURL(_ variable: String) throws(VaultError) -> URL? {
            guard let text = value(variable) else { return nil }
            guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme),
                url.host != nil
            else {
                throw VaultError(
                    .providerConfiguration, "\(variable) must be an http(s) URL such as https://accounts.zoho.eu.")
            }
            return url
        }
        let accountsURL = try serverURL(ZohoVariable.accountsURL)
        var overrides: [ZohoDataCenter: URL] = [:]
        for center in ZohoDataCenter.allCases {
            if let url = try serverURL(ZohoVariable.accountsURLPrefix + center.rawValue.uppercased()) {
                overrides[center] = url
            }
        }
        let fallback = value(ZohoVariable.refreshToken).map(Secret.init)
        return zohoProducts.map {
            zoho(
                $0, dataCenter: dataCenter, clientID: clientID, clientSecret: secret, accountsURL: accountsURL,
                fallbackRefreshToken: fallback, accountsServerOverrides: overrides)
        }
    }
}
