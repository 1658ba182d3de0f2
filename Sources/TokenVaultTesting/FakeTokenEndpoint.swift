import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A real HTTP token endpoint on 127.0.0.1 for tests: OAuth 2.0 refresh and authorization-code grants with
/// Zoho's quirks, refresh-token rotation with reuse detection, and scripted failures; an authorization endpoint
/// that checks PKCE (S256) and the redirect URI; revocation (RFC 7009, answering as Zoho does); and a log of the
/// requests received.
///
/// ```swift
/// let endpoint = try FakeTokenEndpoint.start(rotation: .rotating)
/// endpoint.addRefreshToken("rt-1")
/// endpoint.enqueue(.status(503))        // the next request fails
/// // ZOHO_ACCOUNTS_URL = endpoint.baseURL; the token URL is baseURL + /oauth/v2/token
/// let callback = try endpoint.approve(authorizationURL)   // the user consents: the redirect back, with a code
/// ```
public final class FakeTokenEndpoint: Sendable {
    public enum Rotation: Sendable {
        /// Zoho: a refresh returns no new refresh token; the old one keeps working.
        case none
        /// Every refresh returns a new refresh token and retires the old one. Presenting a retired one revokes
        /// the whole family (RFC 9700 section 4.14.2).
        case rotating
    }

    /// A scripted answer for the next request, instead of the normal one.
    public enum Behavior: Sendable {
        /// HTTP 200 with `{"error": code}`, as Zoho answers a revoked refresh token (`invalid_code`).
        case errorWith200(String)
        /// This status with `{"error": "server_error"}` (or an empty body for 5xx).
        case status(Int)
        /// Zoho's rate-limit answer: HTTP 200 (or `status`) with an "Access Denied" text body.
        case accessDenied
        /// Answer normally after sleeping this many seconds.
        case delay(TimeInterval)
        /// A redirect (307 by default) to `location`, as a hostile or misconfigured endpoint might answer.
        case redirect(to: URL, status: Int = 307)
    }

    /// One request as the endpoint received it, for tests to inspect. Test data only: it holds the values sent,
    /// codes, verifiers and tokens included.
    public struct ReceivedRequest: Sendable {
        /// `GET` or `POST`.
        public var method: String
        /// The path, without the query, such as `/oauth/v2/token`.
        public var path: String
        /// The query's parameters.
        public var query: [String: String]
        /// The form body's parameters.
        public var form: [String: String]
        /// Whether the client authenticated with HTTP Basic.
        public var usedBasicAuthentication: Bool
    }

    /// The app's client id that the endpoint accepts.
    public let clientID: String
    /// The app's client secret that the endpoint accepts.
    public let clientSecret: String
    /// The port on 127.0.0.1.
    public let port: Int
    /// `http://127.0.0.1:<port>`: what `ZOHO_ACCOUNTS_URL` should be.
    public var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }
    /// The token endpoint, `baseURL/oauth/v2/token`.
    public var tokenURL: URL { baseURL.appendingPathComponent("oauth/v2/token") }
    /// The authorization endpoint, `baseURL/oauth/v2/auth`.
    public var authorizationURL: URL { baseURL.appendingPathComponent("oauth/v2/auth") }
    /// The revocation endpoint, `baseURL/oauth/v2/token/revoke`.
    public var revocationURL: URL { baseURL.appendingPathComponent("oauth/v2/token/revoke") }

    private let listener: Int32
    private let state: Mutex<State>

    /// What the endpoint knows and has counted, touched only under the lock.
    private struct State {
        var rotation: Rotation
        var lifetime: Int
        var script: [Behavior] = []
        var extraFields: [String: String] = [:]
        var refreshFamilies: [String: Int] = [:]  // live refresh token -> family
        var retired: [String: Int] = [:]  // rotated-out refresh token -> family
        var revokedFamilies: Set<Int> = []
        var codes: Set<String> = []
        /// Codes issued by the authorization endpoint: the redirect URI and PKCE challenge they were issued for.
        var issuedCodes: [String: (redirectURI: String, challenge: String?)] = [:]
        var location: String?
        var denyNext = false
        var received: [ReceivedRequest] = []
        var revoked = 0
        var connections: Set<Int32> = []
        var counter = 0
        var requests = 0
        var started = 0
        var reuse = 0
        var stopped = false
        var expiresInSecondsKey = false
        var latency: TimeInterval = 0

        mutating func issueAccessToken() -> [String: Any] {
            counter += 1
            var response: [String: Any] = [
                "access_token": "1000.at-\(counter)-\(UUID().uuidString.prefix(8))",
                "api_domain": "https://www.zohoapis.eu", "token_type": "Bearer",
            ]
            for (key, value) in extraFields { response[key] = value }
            if expiresInSecondsKey {
                response["expires_in"] = lifetime * 1000
                response["expires_in_sec"] = lifetime
            } else {
                response["expires_in"] = lifetime
            }
            return response
        }
    }

    private init(listener: Int32, port: Int, rotation: Rotation, lifetime: Int, clientID: String, clientSecret: String)
    {
        self.listener = listener
        self.port = port
        self.state = Mutex(State(rotation: rotation, lifetime: lifetime))
        self.clientID = clientID
        self.clientSecret = clientSecret
    }

    /// Listens on 127.0.0.1 on a free port. `lifetime` is the `expires_in` of issued access tokens.
    /// - Parameter location: when set, the authorization endpoint's redirects carry Zoho's `location` (this value)
    ///   and `accounts-server` (``baseURL``), as Zoho's multi-data-centre callbacks do.
    public static func start(
        rotation: Rotation = .none, lifetime: Int = 3600, clientID: String = "1000.TESTCLIENT",
        clientSecret: String = "test-client-secret", location: String? = nil
    ) throws -> FakeTokenEndpoint {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 512) == 0 else {
            close(fd)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let server = FakeTokenEndpoint(
            listener: fd, port: port, rotation: rotation, lifetime: lifetime, clientID: clientID,
            clientSecret: clientSecret)
        server.state.withLock { $0.location = location }
        let thread = Thread { server.acceptLoop() }
        thread.start()
        return server
    }

    deinit { stop() }

    /// Stops listening and ends its connections: requests in progress get their answers, but a kept-alive
    /// connection takes no further request (a client reusing it would otherwise still reach a stopped endpoint, or a
    /// later test's endpoint that happens to get the same port would not see the request).
    public func stop() {
        let (wasStopped, open) = state.withLock { state in
            defer { state.stopped = true }
            return (state.stopped, state.connections)
        }
        if !wasStopped {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
        for fd in open { shutdown(fd, Int32(SHUT_RD)) }
    }

    // MARK: Set-up and inspection

    /// Makes `token` a valid refresh token (a new family).
    public func addRefreshToken(_ token: String) {
        state.withLock { state in
            state.counter += 1
            state.refreshFamilies[token] = state.counter
        }
    }

    /// Makes `code` a valid single-use authorization code.
    public func addAuthorizationCode(_ code: String) {
        state.withLock { _ = $0.codes.insert(code) }
    }

    /// Scripts the next answers, in order; each is used once.
    public func enqueue(_ behaviors: Behavior...) {
        state.withLock { $0.script.append(contentsOf: behaviors) }
    }

    /// Makes every answer from now on wait this many seconds first (a slow provider), on top of any scripted
    /// `.delay`. Requests are answered concurrently, each on its own thread.
    public func setLatency(_ seconds: TimeInterval) {
        state.withLock { $0.latency = seconds }
    }

    /// Changes the lifetime of access tokens issued from now on.
    public func setLifetime(_ seconds: Int) {
        state.withLock { $0.lifetime = seconds }
    }

    /// Adds these fields (such as a `scope`) to every answer that issues tokens.
    public func setExtraFields(_ fields: [String: String]) {
        state.withLock { $0.extraFields = fields }
    }

    /// Also send `expires_in_sec` (seconds) with `expires_in` in milliseconds, as some Zoho products do.
    public func setZohoMillisecondsExpiry(_ on: Bool) {
        state.withLock { $0.expiresInSecondsKey = on }
    }

    /// Makes the authorization endpoint answer the next authorization with `error=access_denied`, as when the
    /// user declines the consent screen.
    public func denyNextAuthorization() {
        state.withLock { $0.denyNext = true }
    }

    /// Every request received so far, in order (test data: values included).
    public var receivedRequests: [ReceivedRequest] { state.withLock { $0.received } }

    /// Refresh tokens revoked so far through the revocation endpoint.
    public var revocationCount: Int { state.withLock { $0.revoked } }

    /// Plays the user who opens `authorizationURL` and consents: sends its path and query to this endpoint's
    /// authorization endpoint over HTTP (whatever host the URL names, as Zoho sends a user on to the data centre of
    /// their account) and returns the redirect back to the app (its `Location`), with `code` and `state`, or
    /// `error`.
    /// - Throws: when the endpoint does not answer with a redirect (its JSON error is in the message).
    public func approve(_ authorizationURL: URL) throws -> URL {
        var target = authorizationURL.path
        if let query = authorizationURL.query { target += "?" + query }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        let request = Array("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
        var offset = 0
        while offset < request.count {
            let sent = request[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw POSIXError(.EIO) }
            offset += sent
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got <= 0 { break }
            answer += buffer[0..<got]
        }
        let text = String(decoding: answer, as: UTF8.self)
        for line in text.split(separator: "\r\n") where line.lowercased().hasPrefix("location:") {
            if let url = URL(string: line.dropFirst("location:".count).trimmingCharacters(in: .whitespaces)) {
                return url
            }
        }
        throw FakeEndpointError(message: "the authorization endpoint did not redirect: \(text.suffix(200))")
    }

    /// Token requests answered so far (any outcome).
    public var requestCount: Int { state.withLock { $0.requests } }
    /// Token requests received so far, including those still being answered.
    public var startedCount: Int { state.withLock { $0.started } }
    /// Times a retired (rotated-out) refresh token was presented.
    public var reuseCount: Int { state.withLock { $0.reuse } }
    /// Whether `token` is currently a valid refresh token.
    public func isValidRefreshToken(_ token: String) -> Bool {
        state.withLock { state in state.refreshFamilies[token].map { !state.revokedFamilies.contains($0) } ?? false }
    }

    // MARK: Serving

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            let thread = Thread { self.serve(client) }
            thread.start()
        }
    }

    /// Answers requests on one connection until the client closes it or asks to (HTTP/1.1 keep-alive, as real
    /// token endpoints do; a scripted delay or redirect closes it after answering).
    private func serve(_ fd: Int32) {
        let stopped = state.withLock { state in
            state.connections.insert(fd)
            return state.stopped
        }
        defer {
            state.withLock { _ = $0.connections.remove(fd) }
            close(fd)
        }
        guard !stopped else { return }
        while let request = readRequest(fd) {
            guard serveOne(request, fd),
                request.headers["connection"]?.lowercased() != "close",
                !state.withLock({ $0.stopped })
            else { return }
        }
    }

    /// Answers one request; false when the connection must close.
    private func serveOne(_ request: Request, _ fd: Int32) -> Bool {
        state.withLock { $0.started += 1 }
        var (status, body) = answer(request)
        var delayed = false
        if case .delayed(let seconds, let inner) = status {
            Thread.sleep(forTimeInterval: seconds)
            status = inner
            delayed = true
        }
        state.withLock { $0.requests += 1 }
        let code: Int
        var location = ""
        switch status {
        case .plain(let plain): code = plain
        case .redirect(let redirect, let target): (code, location) = (redirect, "Location: \(target)\r\n")
        case .delayed: return false
        }
        let keepAlive = location.isEmpty && !delayed
        let reason =
            [
                200: "OK", 302: "Found", 307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request",
                401: "Unauthorized",
                404: "Not Found", 429: "Too Many Requests",
            ][code] ?? "Error"
        let head =
            "HTTP/1.1 \(code) \(reason)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n"
            + location + (keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n")
        let bytes = Array(head.utf8) + body
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return keepAlive
    }

    private indirect enum Status {
        case plain(Int)
        /// A redirect status and its Location.
        case redirect(Int, String)
        case delayed(TimeInterval, Status)
    }

    private struct Request {
        var method: String
        var path: String
        var headers: [String: String]
        var body: [UInt8]
    }

    private func readRequest(_ fd: Int32) -> Request? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        var headerEnd: Int?
        var contentLength = 0
        while true {
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got <= 0 { return nil }
            data += buffer[0..<got]
            if headerEnd == nil, let range = data.firstRange(of: Array("\r\n\r\n".utf8)) {
                headerEnd = range.upperBound
                let head = String(decoding: data[0..<range.lowerBound], as: UTF8.self)
                for line in head.split(separator: "\r\n").dropFirst() {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    if parts.count == 2, parts[0].lowercased() == "content-length" {
                        contentLength = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
                    }
                }
            }
            if let headerEnd, data.count >= headerEnd + contentLength { break }
            if data.count > 1_000_000 { return nil }
        }
        let end = headerEnd!
        let head = String(decoding: data[0..<(end - 4)], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        let requestLine = lines.first?.split(separator: " ") ?? []
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 {
                headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return Request(
            method: requestLine.first.map(String.init) ?? "",
            path: requestLine.dropFirst().first.map(String.init) ?? "",
            headers: headers, body: Array(data[end..<(end + contentLength)]))
    }

    private func json(_ object: [String: Any]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }

    private func answer(_ request: Request) -> (Status, [UInt8]) {
        let pathOnly = String(request.path.split(separator: "?", maxSplits: 1).first ?? "")
        let query =
            request.path.contains("?")
            ? Self.parseForm(Array(request.path.split(separator: "?", maxSplits: 1)[1].utf8)) : [:]
        let form = Self.parseForm(request.body)
        var id = form["client_id"]
        var secret = form["client_secret"]
        var basic = false
        if let authorization = request.headers["authorization"], authorization.hasPrefix("Basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6))).map({
                String(decoding: $0, as: UTF8.self)
            })
        {
            let parts = decoded.split(separator: ":", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
            if parts.count == 2 { (id, secret, basic) = (parts[0], parts[1], true) }
        }
        state.withLock {
            $0.received.append(
                ReceivedRequest(
                    method: request.method, path: pathOnly, query: query, form: form, usedBasicAuthentication: basic))
        }
        if request.method == "GET", pathOnly == "/oauth/v2/auth" {
            return authorize(query)
        }
        guard request.method == "POST", pathOnly == "/oauth/v2/token" || pathOnly == "/oauth/v2/token/revoke" else {
            return (.plain(404), json(["error": "not_found"]))
        }
        let revoking = pathOnly == "/oauth/v2/token/revoke"
        return state.withLock { state -> (Status, [UInt8]) in
            var delay = state.latency
            while !state.script.isEmpty {
                let behavior = state.script.removeFirst()
                switch behavior {
                case .delay(let seconds):
                    delay += seconds
                    continue
                case .errorWith200(let code):
                    return (wrap(.plain(200), delay), json(["error": code]))
                case .status(let code):
                    return (wrap(.plain(code), delay), code >= 500 ? [] : json(["error": "server_error"]))
                case .accessDenied:
                    return (wrap(.plain(200), delay), Array("{\"error\":\"Access Denied\"}".utf8))
                case .redirect(let location, let code):
                    return (wrap(.redirect(code, location.absoluteString), delay), [])
                }
            }
            guard id == clientID, secret == clientSecret else {
                return (wrap(.plain(revoking ? 401 : 200), delay), json(["error": "invalid_client"]))
            }
            if revoking {
                // Zoho: {"status":"success"}, or HTTP 400 for a token it does not know.
                guard let token = form["token"] ?? query["token"], let family = state.refreshFamilies[token],
                    !state.revokedFamilies.contains(family)
                else {
                    return (wrap(.plain(400), delay), json(["error": "invalid_token"]))
                }
                state.revokedFamilies.insert(family)
                state.revoked += 1
                return (wrap(.plain(200), delay), json(["status": "success"]))
            }
            switch form["grant_type"] {
            case "refresh_token":
                guard let token = form["refresh_token"] else {
                    return (wrap(.plain(400), delay), json(["error": "invalid_request"]))
                }
                if let family = state.retired[token] {
                    state.reuse += 1
                    state.revokedFamilies.insert(family)
                    return (wrap(.plain(400), delay), json(["error": "invalid_grant"]))
                }
                guard let family = state.refreshFamilies[token], !state.revokedFamilies.contains(family) else {
                    // Zoho answers a revoked or unknown refresh token with HTTP 200.
                    return (wrap(.plain(200), delay), json(["error": "invalid_code"]))
                }
                var response = state.issueAccessToken()
                if state.rotation == .rotating {
                    state.counter += 1
                    let next = "rt-\(family)-\(state.counter)"
                    state.refreshFamilies[token] = nil
                    state.retired[token] = family
                    state.refreshFamilies[next] = family
                    response["refresh_token"] = next
                }
                return (wrap(.plain(200), delay), json(response))
            case "authorization_code":
                if let code = form["code"], let issued = state.issuedCodes.removeValue(forKey: code) {
                    // RFC 6749 4.1.3 and RFC 7636 4.6: the same redirect URI, and the verifier of the challenge.
                    guard form["redirect_uri"] == issued.redirectURI else {
                        return (wrap(.plain(400), delay), json(["error": "invalid_grant"]))
                    }
                    if let challenge = issued.challenge {
                        guard let verifier = form["code_verifier"], Self.s256(verifier) == challenge else {
                            return (wrap(.plain(400), delay), json(["error": "invalid_grant"]))
                        }
                    }
                } else {
                    guard let code = form["code"], state.codes.remove(code) != nil else {
                        return (wrap(.plain(200), delay), json(["error": "invalid_code"]))
                    }
                }
                state.counter += 1
                let refresh = "rt-code-\(state.counter)"
                state.refreshFamilies[refresh] = state.counter
                var response = state.issueAccessToken()
                response["refresh_token"] = refresh
                return (wrap(.plain(200), delay), json(response))
            default:
                return (wrap(.plain(400), delay), json(["error": "unsupported_grant_type"]))
            }
        }
    }

    /// The authorization endpoint: checks the client, the redirect URI and the PKCE challenge, and redirects back
    /// with a code bound to both (or with `error`).
    private func authorize(_ query: [String: String]) -> (Status, [UInt8]) {
        guard query["client_id"] == clientID else {
            return (.plain(400), json(["error": "invalid_client"]))
        }
        guard let redirect = query["redirect_uri"], var back = URLComponents(string: redirect), back.scheme != nil
        else {
            return (.plain(400), json(["error": "invalid_request", "error_description": "redirect_uri"]))
        }
        guard query["response_type"] == "code" else {
            return (.plain(400), json(["error": "unsupported_response_type"]))
        }
        let challenge = query["code_challenge"]
        if challenge != nil, query["code_challenge_method"] != "S256" {
            return (.plain(400), json(["error": "invalid_request", "error_description": "code_challenge_method"]))
        }
        let (code, location, deny) = state.withLock { state -> (String, String?, Bool) in
            state.counter += 1
            let code = "1000.code-\(state.counter)-\(UUID().uuidString.prefix(8))"
            let deny = state.denyNext
            state.denyNext = false
            if !deny { state.issuedCodes[code] = (redirect, challenge) }
            return (code, state.location, deny)
        }
        var items = back.queryItems ?? []
        if deny {
            items.append(URLQueryItem(name: "error", value: "access_denied"))
        } else {
            items.append(URLQueryItem(name: "code", value: code))
        }
        if let state = query["state"] { items.append(URLQueryItem(name: "state", value: state)) }
        if let location {
            items.append(URLQueryItem(name: "location", value: location))
            items.append(URLQueryItem(name: "accounts-server", value: baseURL.absoluteString))
        }
        back.queryItems = items
        return (.redirect(302, back.url?.absoluteString ?? redirect), [])
    }

    /// BASE64URL(SHA256(verifier)), computed independently of the vault (Foundation has no SHA-256 on Linux, so
    /// a plain implementation).
    static func s256(_ verifier: String) -> String {
        Data(SHA256Digest.hash(Array(verifier.utf8))).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private func wrap(_ status: Status, _ delay: TimeInterval) -> Status {
        delay > 0 ? .delayed(delay, status) : status
    }

    static func parseForm(_ body: [UInt8]) -> [String: String] {
        var form: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            form[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return form
    }
}

/// The fake endpoint's own failure, such as an authorization endpoint that did not redirect.
public struct FakeEndpointError: Error, CustomStringConvertible {
    /// What went wrong.
    public let message: String
    /// The message.
    public var description: String { message }
}
