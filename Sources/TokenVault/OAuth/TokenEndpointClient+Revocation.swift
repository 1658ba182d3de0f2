import Foundation

/// Token revocation (RFC 7009; Zoho's `POST {accounts server}/oauth/v2/token/revoke`).
extension TokenEndpointClient {
    enum RevocationOutcome: Sendable, Equatable {
        /// The provider revoked the token.
        case revoked
        /// The provider no longer knew the token (revoked, expired or replaced before): as good as revoked.
        case alreadyInvalid
        /// The provider may still honour the token: the network failed, it timed out, or answered an error that
        /// does not say the token is dead.
        case failed(VaultError)
    }

    /// Revokes `token` (a refresh token) at `provider.revocationURL`, retrying transient failures as a refresh
    /// does (revoking twice is harmless). The token travels in the form body, and also in the URL's query when the
    /// provider asks for it (``OAuthProvider/revocationTokenInQuery``, Zoho).
    ///
    /// RFC 7009 endpoints answer 200 also for a token they do not know; Zoho answers 400. A 400 or 200 whose
    /// `error` is `invalid_token`, `invalid_grant` or `invalid_code`, or a 400 that is empty or JSON without `error`,
    /// therefore counts as already invalid (a 400 page that is neither, such as a proxy's HTML, does not); a 400 with any other error (`invalid_request`, `invalid_client`,
    /// `unsupported_token_type`, …) says the request or the app was at fault, and fails: the token may be live.
    func revoke(provider: OAuthProvider, token: Secret) async -> RevocationOutcome {
        let name = provider.name
        guard let url = provider.revocationURL else {
            return .failed(
                VaultError(
                    .providerConfiguration,
                    "provider '\(name)' has no revocation URL; set OAuthProvider.revocationURL (RFC 7009) to revoke."))
        }
        var form = FormBody()
        form.append("token", secret: token)
        form.append("token_type_hint", "refresh_token")
        var target = url
        if provider.revocationTokenInQuery {
            var query = FormBody()
            query.append("token", secret: token)
            var text = url.absoluteString
            text += (url.query == nil ? "?" : "&") + String(decoding: query.bytes, as: UTF8.self)
            target = URL(string: text) ?? url
        }
        let (body, headers) = Self.authenticated(form, provider: provider)
        let request = TokenEndpointRequest(
            url: target, headers: headers, body: body.bytes, timeout: policy.requestTimeout)
        var lastError = VaultError(.revocationFailed, "no attempt was made")
        for attempt in 1...max(1, policy.attempts) {
            if attempt > 1 {
                try? await Task.sleep(nanoseconds: UInt64(policy.backoff(beforeAttempt: attempt) * 1_000_000_000))
            }
            let response: TokenEndpointResponse
            switch await sendWithDeadline(request) {
            case .success(let answer):
                response = answer
            case .failure(let failure):
                let (timedOut, error) = (failure.timedOut, failure.error)
                lastError = VaultError(
                    .revocationFailed,
                    timedOut
                        ? "the \(name) revocation endpoint did not answer within \(Int(policy.requestTimeout)) s."
                        : "could not reach the \(name) revocation endpoint (\(url.host ?? "?")): "
                            + "\(Self.describe(error)).", underlying: error)
                continue
            }
            let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(response.body.prefix(65_536)))
            let errorCode = object?["error"]?.stringValue.map(Self.sanitize)
            let deadToken = ["invalid_token", "invalid_grant", "invalid_code"]
            switch response.status {
            case 200..<300:
                if let errorCode {
                    if deadToken.contains(errorCode) { return .alreadyInvalid }
                    return .failed(
                        VaultError(
                            .revocationFailed,
                            "the \(name) revocation endpoint answered HTTP \(response.status) with error "
                                + "\"\(errorCode)\"; the token may still be live."))
                }
                return .revoked
            case 300..<400:
                return .failed(
                    VaultError(
                        .revocationFailed,
                        "the \(name) revocation endpoint answered HTTP \(response.status), a redirect; the vault never "
                            + "follows one (it would send the token and the client secret elsewhere)."))
            // Zoho's answer for a token it does not know: 400, empty or JSON without `error`. A 400 page that is
            // neither (HTML from a proxy or a firewall) says nothing about the token: it may be live.
            case 400
            where deadToken.contains(errorCode ?? "")
                || (errorCode == nil
                    && (object != nil || response.body.allSatisfy { $0 == 0x20 || $0 == 0x0a || $0 == 0x0d })):
                return .alreadyInvalid
            case 429, 500...:
                lastError = VaultError(
                    .revocationFailed, "the \(name) revocation endpoint answered HTTP \(response.status).")
                continue
            default:
                let detail = errorCode.map { " with error \"\($0)\"" } ?? ""
                return .failed(
                    VaultError(
                        .revocationFailed,
                        "the \(name) revocation endpoint answered HTTP \(response.status)\(detail); check the "
                            + "provider's client id, secret and revocation URL."))
            }
        }
        return .failed(
            VaultError(
                lastError.code, "\(lastError.message) Tried \(max(1, policy.attempts)) times.",
                underlying: lastError.underlying))
    }
}
