import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The default transport: the toolchain's Foundation `URLSession` (libcurl on Linux).
///
/// Chosen over AsyncHTTPClient because the vault makes a handful of token requests an hour: Foundation is
/// already in every Swift toolchain, adds no dependency to build or audit, and does TLS with the system's trust
/// store. No cookies, no cache, no credential storage, no redirects followed; a request timeout on every call. (Not `URLSessionTransport`:
/// swift-openapi-urlsession has a type of that name.)
public struct URLSessionHTTPTransport: HTTPTransport {
    private let session: URLSession

    /// A transport on the process's one ephemeral session for token requests.
    public init() {
        session = Self.shared
    }

    /// One session for every transport: a session keeps its delegate until it is invalidated, so one per
    /// configuration would never be released.
    private static let shared: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpCookieStorage = nil
        configuration.urlCache = nil
        configuration.urlCredentialStorage = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        return URLSession(configuration: configuration, delegate: RefuseRedirects(), delegateQueue: nil)
    }()

    /// Sends `request` with its timeout and returns the status and body, whatever the status.
    /// - Throws: the session's error (usually a `URLError`) when no answer came: no connection, TLS failure,
    ///   timeout.
    public func send(_ request: TokenEndpointRequest) async throws -> TokenEndpointResponse {
        var urlRequest = URLRequest(url: request.url, timeoutInterval: request.timeout)
        urlRequest.httpMethod = request.method
        for header in request.headers {
            urlRequest.setValue(header.value, forHTTPHeaderField: header.name)
        }
        urlRequest.httpBody = Data(request.body)
        let (data, response) = try await session.data(for: urlRequest)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        return TokenEndpointResponse(status: status, body: Array(data))
    }
}

/// Never follows a redirect: a token request carries a grant and the client secret, and a 307 would send them on
/// to whatever host the answer names. The redirect itself comes back as the answer (and fails as one).
private final class RefuseRedirects: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}
