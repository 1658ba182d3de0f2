import Foundation

/// One HTTP request to a token endpoint. The body may hold secrets: it is never logged or printed.
public struct HTTPRequest: Sendable {
    public var url: URL
    public var method: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The whole exchange must finish within this many seconds.
    public var timeout: TimeInterval

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

public struct HTTPResponse: Sendable {
    public var status: Int
    public var body: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// How the vault talks HTTP. Swap it to route through your own client, a proxy, or a test double.
///
/// Implementations throw for network failures and timeouts (any error counts as transient and is retried);
/// HTTP error statuses are returned, not thrown.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}
