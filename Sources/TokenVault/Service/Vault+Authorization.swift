import Foundation

/// The authorization-code flow with `state` and PKCE (RFC 6749 section 4.1, RFC 7636), kept in the database so that
/// any instance can complete what another began (docs/connecting.md).
extension Vault {
    /// How long a state lives unless told otherwise: 10 minutes.
    public static let defaultAuthorizationLifetime: TimeInterval = 600

    /// Bytes of a state's selector (found by) and validator (checked in constant time against its hash).
    static let stateSelectorBytes = 16
    static let stateValidatorBytes = 32

    /// Begins connecting an account: stores a single-use state, bound to `client`, `provider` and `redirectURI`,
    /// with a PKCE verifier sealed under the current key, and returns the provider's authorization URL to send the
    /// user to (with `response_type=code`, `client_id`, `redirect_uri`, `scope`, `state`, an S256
    /// `code_challenge`, and the provider's ``OAuthProvider/authorizationParameters``: for Zoho
    /// `access_type=offline` and `prompt=consent`).
    ///
    /// - Parameters:
    ///   - client: the client (tenant, account) the tokens will be stored for.
    ///   - provider: a configured provider with an ``OAuthProvider/authorizationURL``.
    ///   - redirectURI: where the provider sends the user back: an absolute http(s) URL without a fragment,
    ///     registered with the provider. The code exchange repeats it.
    ///   - scopes: the scopes to ask for, joined with the provider's ``OAuthProvider/scopeSeparator``.
    ///   - lifetime: seconds until the state expires: 1 to 3600, 10 minutes by default.
    /// - Throws: `.unknownProvider`; `.providerConfiguration` when the provider has no authorization URL;
    ///   `.invalidInput` for a redirect URI, scope or lifetime out of range.
    public func beginAuthorization(
        client: String, provider: String, redirectURI: String, scopes: [String] = [],
        lifetime: TimeInterval = Vault.defaultAuthorizationLifetime
    ) async throws(VaultError) -> AuthorizationRequest {
        try Self.validate(client: client, provider: provider)
        let configured = try providerConfiguration(provider)
        guard let authorizationURL = configured.authorizationURL else {
            throw VaultError(
                .providerConfiguration,
                "provider '\(provider)' has no authorization URL; set OAuthProvider.authorizationURL to begin an "
                    + "authorization.")
        }
        guard lifetime.isFinite, lifetime >= 1, lifetime <= 3600 else {
            throw VaultError(.invalidInput, "an authorization's lifetime must be 1 to 3600 seconds, not \(lifetime).")
        }
        guard Self.redirectBase(redirectURI) != nil, redirectURI.utf8.count <= 2048 else {
            throw VaultError(
                .invalidInput,
                "the redirect URI must be an absolute http(s) URL without a fragment, at most 2048 bytes, such as "
                    + "https://app.example/oauth/callback.")
        }
        for scope in scopes {
            // RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            guard !scope.isEmpty, scope.utf8.count <= 256,
                scope.utf8.allSatisfy({ $0 == 0x21 || (0x23...0x5B).contains($0) || (0x5D...0x7E).contains($0) }),
                !scope.contains(configured.scopeSeparator)
            else {
                throw VaultError(
                    .invalidInput,
                    "a scope must be 1 to 256 printable ASCII characters without spaces, quotes, backslashes or "
                        + "'\(configured.scopeSeparator)'; '\(OAuthProvider.shown(scope))' is not.")
            }
        }
        let joinedScopes = scopes.isEmpty ? nil : scopes.joined(separator: configured.scopeSeparator)

        var stateBytes = [UInt8](repeating: 0, count: Self.stateSelectorBytes + Self.stateValidatorBytes)
        stateBytes.withUnsafeMutableBytes { Sodium.randomBytes($0) }
        let selector = Array(stateBytes[..<Self.stateSelectorBytes])
        let validatorHash = stateBytes[Self.stateSelectorBytes...].withUnsafeBytes { Sodium.sha256($0) }
        let state = Secret(stateBytes.withUnsafeBytes { Sodium.encodeBase64URL($0) })
        stateBytes.withUnsafeMutableBytes { Sodium.zero($0) }

        var verifierBytes = [UInt8](repeating: 0, count: 32)
        verifierBytes.withUnsafeMutableBytes { Sodium.randomBytes($0) }
        let verifier = Secret(verifierBytes.withUnsafeBytes { Sodium.encodeBase64URL($0) })  // 43 characters
        verifierBytes.withUnsafeMutableBytes { Sodium.zero($0) }
        let digest = verifier.withUnsafeBytes { Sodium.sha256($0) }
        let challenge = digest.withUnsafeBytes { Sodium.encodeBase64URL($0) }

        let key = sealer.keyring.current
        let sealed = sealer.seal(
            verifier, context: SealContext(field: .pkceVerifier, provider: provider, clientID: client), key: key,
            cached: false)
        try await repository.insertAuthorization(
            selector: selector, validatorHash: validatorHash, client: client, provider: provider,
            redirectURI: redirectURI, scopes: joinedScopes, verifier: sealed, keyID: key.id, lifetime: lifetime)

        var parameters: [(String, String)] = [
            ("response_type", "code"), ("client_id", configured.clientID), ("redirect_uri", redirectURI),
        ]
        if let joinedScopes { parameters.append(("scope", joinedScopes)) }
        parameters += configured.authorizationParameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        parameters += [("code_challenge", challenge), ("code_challenge_method", "S256")]
        var query = parameters.map { FormBody.encode($0.0) + "=" + FormBody.encode($0.1) }
        query.append("state=" + state.reveal())  // base64url: nothing to encode
        var text = authorizationURL.absoluteString
        text += (authorizationURL.query == nil ? "?" : "&") + query.joined(separator: "&")
        guard let url = URL(string: text) else {
            throw VaultError(.providerConfiguration, "provider '\(provider)''s authorization URL cannot take a query.")
        }
        logger.info("began an authorization", metadata: Self.metadata(client, provider, nil))
        return AuthorizationRequest(
            url: url, state: state, client: client, provider: provider, redirectURI: redirectURI,
            expiresAt: Date().addingTimeInterval(lifetime))
    }

    /// Completes an authorization from the provider's callback: checks the state (known, not altered, not used,
    /// not expired, for this client, provider and redirect URI), marks it used, checks the account's accounts
    /// server (Zoho's `accounts-server` and `location`) against the provider's trusted ones, exchanges the code
    /// there with the PKCE verifier and the redirect URI, and stores the tokens with that server.
    ///
    /// Every error's message can be shown to the user whose browser brought the callback; none quotes the code or
    /// the state.
    ///
    /// - Parameters:
    ///   - callback: the callback's parameters (``AuthorizationCallback/init(parsing:)``).
    ///   - client: when given, the client the caller expects (the signed-in tenant); another is a mismatch.
    ///   - provider: when given, the provider the caller expects.
    /// - Throws: `.authorizationStateUnknown` (no or a malformed state, or one this vault never issued),
    ///   `.authorizationStateExpired`, `.authorizationStateReplayed` (already completed, also by another
    ///   instance), `.authorizationStateMismatch` (another client, provider or redirect URI), `.authorizationDenied`
    ///   (the provider sent `error`, such as `access_denied`; the state is used up), `.accountsServerRefused`
    ///   (nothing sent; the state stays usable), `.authorizationCodeRefused` (the provider refused the code, the
    ///   verifier or the redirect URI), `.invalidInput` (no code), and the exchange's `.providerError`,
    ///   `.providerConfiguration`, `.timedOut`.
    @discardableResult
    public func completeAuthorization(
        _ callback: AuthorizationCallback, client: String? = nil, provider: String? = nil
    ) async throws(VaultError) -> ConnectedAccount {
        let restart = "Start connecting the account again."
        guard let state = callback.state,
            let stateBytes = Sodium.decodeBase64URL(
                state.reveal(), count: Self.stateSelectorBytes + Self.stateValidatorBytes)
        else {
            throw VaultError(
                .authorizationStateUnknown,
                "this authorization link is not valid (its state is missing or malformed). \(restart)")
        }
        let selector = Array(stateBytes[..<Self.stateSelectorBytes])
        let hash = stateBytes[Self.stateSelectorBytes...].withUnsafeBytes { Sodium.sha256($0) }
        guard let stored = try await repository.findAuthorization(selector: selector),
            hash.withUnsafeBytes({ left in
                stored.validatorHash.withUnsafeBytes { right in Sodium.constantTimeEqual(left, right) }
            })
        else {
            throw VaultError(
                .authorizationStateUnknown,
                "this authorization link is not one this service issued, or it was altered. \(restart)")
        }
        let metadata = Self.metadata(stored.clientID, stored.provider, nil)
        guard !stored.used else {
            logger.warning("an authorization's state was presented again", metadata: metadata)
            throw VaultError(
                .authorizationStateReplayed,
                "this authorization was already completed; a link can be used once. If the account is not "
                    + "connected, start connecting it again.")
        }
        guard !stored.expired else {
            throw VaultError(
                .authorizationStateExpired, "this authorization link has expired (it is valid for minutes). \(restart)")
        }
        if let error = callback.error {
            _ = try await repository.consumeAuthorization(selector: selector)
            logger.notice(
                "the provider's callback reported an error",
                metadata: metadata.merging([LogKey.reason: "\(error)"]) { $1 })
            throw VaultError(
                .authorizationDenied,
                error == "access_denied"
                    ? "access was not granted: the consent screen was declined. To connect the account, start again "
                        + "and accept."
                    : "the provider did not grant access (\(error)). \(restart)")
        }
        if let client, client != stored.clientID {
            throw Self.mismatch("another client")
        }
        if let provider, provider != stored.provider {
            throw Self.mismatch("another provider")
        }
        if let arrived = callback.redirectURI, Self.redirectBase(arrived) != Self.redirectBase(stored.redirectURI) {
            throw Self.mismatch("another redirect URI")
        }
        let configured = try providerConfiguration(stored.provider)
        // A callback without a server: the account is where the code is exchanged, the default.
        let server =
            try configured.resolveAccountsServer(callback.accountsServer, location: callback.location)
            ?? configured.defaultAccountsServer
        let accountProvider = try configured.at(accountsServer: server)
        guard let code = callback.code else {
            throw VaultError(.invalidInput, "the callback holds no authorization code. \(restart)")
        }
        guard let sealedVerifier = stored.verifier else {
            throw VaultError(.authorizationStateReplayed, "this authorization was already completed. \(restart)")
        }
        let verifier: Secret
        do {
            verifier = try sealer.open(
                sealedVerifier, keyID: stored.keyID,
                context: SealContext(field: .pkceVerifier, provider: stored.provider, clientID: stored.clientID),
                cached: false)
        } catch {
            logger.error("could not open an authorization's PKCE verifier", metadata: metadata)
            throw error
        }
        guard try await repository.consumeAuthorization(selector: selector) else {
            throw VaultError(
                .authorizationStateReplayed,
                "this authorization was completed at the same moment by another request; a link can be used once.")
        }
        let result = await endpoint.exchange(
            provider: accountProvider, code: code, redirectURI: stored.redirectURI, codeVerifier: verifier)
        switch result.outcome {
        case .success(let tokens):
            try await store(
                tokens, client: stored.clientID, provider: stored.provider, accountsServer: server, kind: .authorized)
            logger.notice("completed an authorization", metadata: metadata)
            return ConnectedAccount(
                client: stored.clientID, provider: stored.provider, accountsServer: server,
                accessToken: AccessToken(
                    value: tokens.accessToken!, expiresAt: tokens.expiresAt, scopes: tokens.scopes,
                    metadata: tokens.metadata, refreshed: true))
        case .refused(let code):
            throw VaultError(
                .authorizationCodeRefused,
                "the provider refused the authorization code (\(code)): it was used already, expired, or does not "
                    + "belong to this sign-in. \(restart)")
        case .failed(let error):
            throw error
        }
    }

    private static func mismatch(_ what: String) -> VaultError {
        VaultError(
            .authorizationStateMismatch,
            "this authorization link was issued for \(what) than the one completing it. Start connecting the "
                + "account again from the same place.")
    }

    /// The scheme, host, port and path of an absolute http(s) URL without a fragment (lower-case scheme and
    /// host); nil for anything else.
    static func redirectBase(_ text: String) -> String? {
        guard let parts = URLComponents(string: text), let scheme = parts.scheme?.lowercased(),
            ["http", "https"].contains(scheme), let host = parts.percentEncodedHost?.lowercased(), !host.isEmpty,
            parts.fragment == nil, parts.user == nil, parts.password == nil
        else { return nil }
        let port = parts.port.map { ":\($0)" } ?? ""
        return "\(scheme)://\(host)\(port)\(parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath)"
    }
}
