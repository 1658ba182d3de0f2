import Foundation
import Logging

/// Calls a provider's token endpoint (RFC 6749 sections 4.1.3 and 6) and classifies the answer.
struct TokenEndpointClient: Sendable {
    let transport: any HTTPTransport
    let policy: RefreshPolicy
    let logging: ContextLogger
    var logger: Logger { logging.current }

    enum Outcome: Sendable {
        case success(TokenSet)
        /// The grant (refresh token or code) was refused: the user must authorize again.
        case refused(String)
        case failed(VaultError)
    }

    /// What a grant ended with, and how many requests it made.
    struct GrantResult: Sendable {
        let outcome: Outcome
        /// Requests that reached (or may have reached) the endpoint, for the rate limit.
        let attempts: Int
    }

    /// Asked before each request: nil to send it, or the error to end the grant with instead (the request is then
    /// not made, and not counted in ``GrantResult/attempts``).
    typealias BeforeAttempt = @Sendable (_ attempt: Int) async -> VaultError?

    func refresh(
        provider: OAuthProvider, refreshToken: Secret, maximumAttempts: Int, beforeAttempt: BeforeAttempt? = nil
    ) async -> GrantResult {
        var form = FormBody()
        form.append("grant_type", "refresh_token")
        form.append("refresh_token", secret: refreshToken)
        return await grant(
            provider: provider, form: form, kind: "refresh", fallbackRefreshToken: refreshToken,
            maximumAttempts: maximumAttempts, beforeAttempt: beforeAttempt)
    }

    /// - Parameters:
    ///   - redirectURI: the redirect URI the authorization was begun with; nil: the provider's own, if any.
    ///   - codeVerifier: the PKCE verifier (RFC 7636) of the authorization, when it was begun with a challenge.
    func exchange(
        provider: OAuthProvider, code: Secret, redirectURI: String? = nil, codeVerifier: Secret? = nil
    ) async -> GrantResult {
        var form = FormBody()
        form.append("grant_type", "authorization_code")
        form.append("code", secret: code)
        if let redirect = redirectURI ?? provider.redirectURI { form.append("redirect_uri", redirect) }
        if let codeVerifier { form.append("code_verifier", secret: codeVerifier) }
        // A code is single-use: a retry after a lost answer would be refused anyway, so try once.
        return await grant(
            provider: provider, form: form, kind: "code exchange", fallbackRefreshToken: nil,
            maximumAttempts: 1)
    }

    /// The form and headers with the app's client authentication added (RFC 6749 section 2.3.1).
    static func authenticated(
        _ form: FormBody, provider: OAuthProvider
    ) -> (form: FormBody, headers: [(String, String)]) {
        var form = form
        var headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")]
        switch provider.clientAuthentication {
        case .requestBody:
            form.append("client_id", provider.clientID)
            form.append("client_secret", secret: provider.clientSecret)
        case .httpBasic:
            var credentials = FormBody.encode(provider.clientID) + ":"
            credentials += provider.clientSecret.withUnsafeBytes { FormBody.encode(bytes: $0) }
            headers.append(("Authorization", "Basic \(Data(credentials.utf8).base64EncodedString())"))
        }
        return (form, headers)
    }

    private func grant(
        provider: OAuthProvider, form: FormBody, kind: String, fallbackRefreshToken: Secret?, maximumAttempts: Int,
        beforeAttempt: BeforeAttempt? = nil
    ) async -> GrantResult {
        let (form, headers) = Self.authenticated(form, provider: provider)
        let request = TokenEndpointRequest(
            url: provider.tokenURL, headers: headers, body: form.bytes, timeout: policy.requestTimeout)
        let limit = max(1, min(policy.attempts, maximumAttempts))
        var lastError = VaultError(.providerError, "no attempt was made")
        var attempt = 0
        while attempt < limit {
            attempt += 1
            if attempt > 1 {
                try? await Task.sleep(nanoseconds: UInt64(policy.backoff(beforeAttempt: attempt) * 1_000_000_000))
            }
            if let beforeAttempt, let stop = await beforeAttempt(attempt) {
                return GrantResult(outcome: .failed(stop), attempts: attempt - 1)
            }
            let classified = await send(request, provider: provider, kind: kind, fallback: fallbackRefreshToken)
            switch classified {
            case .final(let outcome):
                return GrantResult(outcome: outcome, attempts: attempt)
            case .transient(let error):
                lastError = error
                logger.warning(
                    "token endpoint failed; \(attempt < limit ? "retrying" : "giving up")",
                    metadata: [
                        LogKey.provider: "\(provider.name)", LogKey.attempt: "\(attempt)",
                        LogKey.reason: "\(error.message)",
                    ])
            }
        }
        let more = limit < policy.attempts ? " (fewer attempts than usual: the rate limit allowed only \(limit))" : ""
        return GrantResult(
            outcome: .failed(
                VaultError(
                    lastError.code,
                    "\(lastError.message) Tried \(attempt) time\(attempt == 1 ? "" : "s")\(more); try again later.",
                    retryAfter: lastError.retryAfter, underlying: lastError.underlying)),
            attempts: attempt)
    }

    private enum Classified {
        case final(Outcome)
        case transient(VaultError)
    }

    /// Why a request got no answer: the policy's deadline or the transport's own timeout passed (`timedOut`), or
    /// the transport failed otherwise.
    struct SendFailure: Error {
        let timedOut: Bool
        let error: any Error
    }

    /// Sends `request` through the transport within the policy's request timeout.
    func sendWithDeadline(_ request: TokenEndpointRequest) async -> Result<TokenEndpointResponse, SendFailure> {
        do {
            let transport = self.transport
            return .success(
                try await withDeadline(seconds: policy.requestTimeout) { try await transport.send(request) })
        } catch {
            let timedOut = error is DeadlineExceeded || (error as? URLError)?.code == .timedOut
            return .failure(SendFailure(timedOut: timedOut, error: error))
        }
    }

    private func send(
        _ request: TokenEndpointRequest, provider: OAuthProvider, kind: String, fallback: Secret?
    ) async
        -> Classified
    {
        let name = provider.name
        let response: TokenEndpointResponse
        switch await sendWithDeadline(request) {
        case .success(let answer):
            response = answer
        case .failure(let failure):
            let (timedOut, error) = (failure.timedOut, failure.error)
            return .transient(
                VaultError(
                    timedOut ? .timedOut : .providerError,
                    timedOut
                        ? "the \(name) token endpoint did not answer within \(Int(policy.requestTimeout)) s."
                        : "could not reach the \(name) token endpoint (\(provider.tokenURL.host ?? "?")): "
                            + "\(Self.describe(error)).", underlying: error))
        }
        if (300..<400).contains(response.status) {
            return .final(
                .failed(
                    VaultError(
                        .providerError,
                        "the \(name) token endpoint answered HTTP \(response.status), a redirect, to a \(kind); the "
                            + "vault never follows one (it would send the grant and the client secret elsewhere). "
                            + "Configure the token URL the provider means.")))
        }
        guard response.body.count <= TokenResponse.maximumBytes else {
            return .final(
                .failed(
                    VaultError(
                        .providerError,
                        "the \(name) token endpoint sent \(response.body.count) bytes to a \(kind), more than the "
                            + "\(TokenResponse.maximumBytes) an answer may have.")))
        }
        let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(response.body))
        if let object, object["access_token"]?.stringValue != nil {
            do {
                var tokens = try TokenResponse.parse(
                    object: object, receivedAt: Date(), fallbackRefreshToken: fallback, requireAccessToken: true,
                    strict: false, metadataFields: provider.metadataFields)
                let dropped = TokenResponse.droppedFields(of: object, keeping: provider.metadataFields)
                if !dropped.isEmpty {
                    // Names only: their values may be credentials, which is why they are not stored.
                    logger.notice(
                        "the token endpoint's answer held fields that are not kept as metadata; they were dropped",
                        metadata: [LogKey.provider: "\(name)", LogKey.fields: "\(dropped.joined(separator: ","))"])
                }
                if let clean = tokens.removingNULs() {
                    // Refusing the answer would lose its tokens (a rotated refresh token exists nowhere else).
                    logger.warning(
                        "the token endpoint's answer held NUL characters in its scope or metadata, which PostgreSQL cannot store; they were removed",
                        metadata: [LogKey.provider: "\(name)"])
                    tokens = clean
                }
                if let scopes = tokens.scopes, scopes.utf8.count > TokenSet.maximumScopesBytes {
                    // As with the metadata: the tokens are kept, the oversized scopes are not.
                    logger.warning(
                        "the token endpoint's answer held more scope text than a row may store; it was dropped",
                        metadata: [LogKey.provider: "\(name)"])
                    tokens.scopes = nil
                }
                if tokens.metadataIsTooLarge {
                    // Its tokens are kept (a rotated refresh token exists nowhere else); its metadata is not.
                    logger.warning(
                        "the token endpoint's answer held more metadata than a row may store; it was dropped",
                        metadata: [LogKey.provider: "\(name)"])
                    tokens.metadata = [:]
                }
                try tokens.checkStorable()
                return .final(.success(tokens))
            } catch {
                return .final(
                    .failed(
                        VaultError(
                            .providerError,
                            "the \(name) token endpoint sent an unusable \(kind) answer: \(error.message)")))
            }
        }
        let errorCode = object?["error"]?.stringValue.map(Self.sanitize)
        let accessDenied =
            String(decoding: response.body.prefix(4096), as: UTF8.self)
            .range(of: "access denied", options: .caseInsensitive) != nil
        if let errorCode, ["invalid_grant", "invalid_code"].contains(errorCode) {
            return .final(.refused(errorCode))
        }
        if accessDenied || response.status == 429 || response.status >= 500 {
            let what =
                accessDenied ? "\"Access Denied\" (Zoho's answer when a limit is exceeded)" : "HTTP \(response.status)"
            return .transient(
                VaultError(
                    response.status == 429 || accessDenied ? .rateLimited : .providerError,
                    "the \(name) token endpoint answered \(what) to a \(kind)."))
        }
        if errorCode == "invalid_client" {
            return .final(
                .failed(
                    VaultError(
                        .providerConfiguration,
                        "the \(name) token endpoint refused the app's credentials (invalid_client): check the "
                            + "provider's client id and secret, and its token URL (for Zoho, the data centre).",
                        providerErrorCode: errorCode)))
        }
        let detail = errorCode.map { "error \"\($0)\"" } ?? "no access_token"
        return .final(
            .failed(
                VaultError(
                    .providerError,
                    "the \(name) token endpoint answered HTTP \(response.status) with \(detail) to a \(kind).",
                    providerErrorCode: errorCode)))
    }

    /// Error codes are echoed in messages: keep them short and plain, in case a provider puts data there.
    static func sanitize(_ code: String) -> String {
        String(code.prefix(64).filter { $0.isLetter || $0.isNumber || $0 == "_" || $0 == " " || $0 == "-" })
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? URLError {
            switch error.code {
            case .cannotConnectToHost: return "connection refused"
            case .cannotFindHost, .dnsLookupFailed: return "host name not found"
            case .networkConnectionLost: return "connection lost"
            case .notConnectedToInternet: return "no network"
            case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
                .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot:
                return "TLS failed (certificate or handshake)"
            case .timedOut: return "timed out"
            default: return "network error \(error.code.rawValue)"
            }
        }
        return String(describing: type(of: error))
    }
}

/// An `application/x-www-form-urlencoded` body built straight from bytes, so secrets skip extra copies.
struct FormBody {
    private(set) var bytes: [UInt8] = []

    mutating func append(_ name: String, _ value: String) {
        separator()
        bytes += Array(Self.encode(name).utf8) + [UInt8(ascii: "=")] + Array(Self.encode(value).utf8)
    }

    mutating func append(_ name: String, secret: Secret) {
        separator()
        bytes += Array(Self.encode(name).utf8) + [UInt8(ascii: "=")]
        secret.withUnsafeBytes { Self.encode(bytes: $0, into: &bytes) }
    }

    private mutating func separator() {
        if !bytes.isEmpty { bytes.append(UInt8(ascii: "&")) }
    }

    static func encode(_ text: String) -> String {
        var out: [UInt8] = []
        Array(text.utf8).withUnsafeBytes { encode(bytes: $0, into: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    static func encode(bytes: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        encode(bytes: bytes, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func encode(bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0f)]]
            }
        }
    }
}
