import Foundation

/// One HTTP request to a token endpoint, as the vault hands it to an ``HTTPTransport``. The body may hold secrets
/// (a refresh token, a client secret): never log or print it.
///
/// Named for what it carries rather than `HTTPRequest`, which swift-http-types (and so Hummingbird and Vapor) use.
public struct TokenEndpointRequest: Sendable {
    /// The token endpoint, such as `https://accounts.zoho.eu/oauth/v2/token`.
    public var url: URL
    /// The HTTP method: `POST` for every grant.
    public var method: String
    /// Header fields in order, such as `Content-Type` and, for HTTP Basic client authentication, `Authorization`.
    public var headers: [(name: String, value: String)]
    /// The form-encoded body (`application/x-www-form-urlencoded`).
    public var body: [UInt8]
    /// The whole exchange must finish within this many seconds.
    public var timeout: TimeInterval

    /// A request; `timeout` bounds the whole exchange.
    public init(
        url: URL, method: String = "POST", headers: [(String, String)] = [], body: [UInt8] = [], timeout: TimeInterval
    ) {
        self.url = url
        self.method = method
        self.headers = headers.map { (name: $0.0, value: $0.1) }
        self.body = body
        self.timeout = timeout
    }
}

/// A token endpoint's answer: its status and body, whatever the status (the vault classifies errors itself).
public struct TokenEndpointResponse: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// The body as received; for a successful grant it holds tokens.
    public var body: [UInt8]

    /// A response with `status` and `body`.
    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// How the vault talks HTTP. Swap it to route through your own client, a proxy, or a test double.
///
/// Implementations throw for network failures and timeouts (any error counts as transient and is retried);
/// HTTP error statuses are returned, not thrown. They must not follow redirects: return the 3xx answer itself
/// (the vault refuses it), since following one would send the grant and the client secret to another host.
public protocol HTTPTransport: Sendable {
    /// Sends `request` and returns the answer, whatever its status; throws only when no answer came.
    func send(_ request: TokenEndpointRequest) async throws -> TokenEndpointResponse
}

extension TokenEndpointRequest: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The method and URL (its query, if any, as `<redacted>`), the header names (the `Authorization` value as
    /// `<redacted>`) and the body's length: the body holds a grant and the client secret, and is never printed.
    public var description: String {
        let fields = headers.map { "\($0.name): \(Self.isSecret($0.name) ? "<redacted>" : $0.value)" }
        return "TokenEndpointRequest(\(method) \(Self.shownURL(url)), headers: [\(fields.joined(separator: ", "))], "
            + "body: <\(body.count) bytes, redacted>, timeout: \(timeout))"
    }

    /// The same as ``description``.
    public var debugDescription: String { description }

    /// What `dump` and debuggers show: ``description``'s fields, with the body and credentials redacted.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "url": Self.shownURL(url), "method": method,
                "headers": headers.map { ($0.name, Self.isSecret($0.name) ? "<redacted>" : $0.value) },
                "body": "<\(body.count) bytes, redacted>", "timeout": timeout,
            ], displayStyle: .struct)
    }

    /// The URL without its query, which may hold a token (Zoho's revocation takes `?token=`).
    private static func shownURL(_ url: URL) -> String {
        guard url.query != nil, var parts = URLComponents(url: url, resolvingAgainstBaseURL: false) else {
            return url.absoluteString
        }
        parts.query = nil
        return (parts.url?.absoluteString ?? "") + "?<redacted>"
    }

    private static func isSecret(_ header: String) -> Bool {
        ["authorization", "cookie", "proxy-authorization"].contains(header.lowercased())
    }
}

extension TokenEndpointResponse: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The status and the body's length: a successful body holds tokens, and is never printed.
    public var description: String { "TokenEndpointResponse(status: \(status), body: <\(body.count) bytes, redacted>)" }

    /// The same as ``description``.
    public var debugDescription: String { description }

    /// What `dump` and debuggers show: the status, with the body redacted.
    public var customMirror: Mirror {
        Mirror(self, children: ["status": status, "body": "<\(body.count) bytes, redacted>"], displayStyle: .struct)
    }
}
