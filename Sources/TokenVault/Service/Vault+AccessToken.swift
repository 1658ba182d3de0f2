import Foundation

extension Vault {
    /// A valid access token for (client, provider), refreshed at the provider when needed.
    ///
    /// Returns the stored token while it is valid for longer than the refresh margin. Otherwise refreshes it
    /// exactly once across every task of this process and every process on the database: callers for the same
    /// row wait for one refresh (a lease on the row in PostgreSQL; no connection is held while the provider is
    /// called), re-read the row, and get its result. A rotated refresh token is stored before the new access
    /// token is returned.
    ///
    /// - Throws: `.needsReauthorization` when the provider refused the refresh token (later calls fail fast
    ///   until new tokens are stored); `.rateLimited` rather than exceed the provider's refresh limit;
    ///   `.providerError`/`.timedOut` after bounded retries (also when another process's refresh of the same row,
    ///   which this call waited for, failed); `.timedOut` when another process has held the refresh longer than
    ///   ``RefreshPolicy/waitTimeout``; `.notFound` when there is neither a row nor a
    ///   fallback refresh token; `.unknownProvider` when no token endpoint is configured for `provider`.
    ///   A `.rateLimited` error from the vault's own cap carries ``VaultError/retryAfter``; one from the provider
    ///   (HTTP 429, Zoho's "Access Denied") does not.
    public func accessToken(client: String, provider: String) async throws(VaultError) -> AccessToken {
        try Self.validate(client: client, provider: provider)
        if let row = try await repository.find(client: client, provider: provider) {
            // Fast path: only the access token is opened; the refresh token stays sealed unless it is needed.
            if let token = try await auditingOpen(row, { (row) throws(VaultError) in try openValidAccessToken(row) }) {
                try await auditRead(row, fields: "access_token")
                return token
            }
        } else if configuration.providers[provider]?.fallbackRefreshToken == nil {
            throw Self.noTokens(client: client, provider: provider)
        }
        return try await flights.run(client: client, provider: provider) { () throws(VaultError) in
            try await self.refreshWithLease(client: client, provider: provider)
        }
    }

    /// A valid access token for (client, provider) other than `rejected`: call it when an API answered HTTP 401 to
    /// a token the vault handed out. The vault refreshes once, however many callers in however many processes
    /// report the same rejected token at once; a token that was already replaced is never refreshed again.
    ///
    /// If the stored access token is no longer `rejected` (another caller's report, a refresh, or `store` replaced
    /// it), that token is returned without calling the provider, as ``accessToken(client:provider:)`` would.
    /// Otherwise the row is refreshed under the same single flight as `accessToken`, and callers waiting for it
    /// accept the first token that is not `rejected`, or that a refresh stored after the report (a provider may
    /// hand out the same value again).
    ///
    /// - Parameters:
    ///   - client: the client (tenant, account) whose token was refused.
    ///   - provider: the provider it was issued by, such as `zoho_crm`.
    ///   - rejected: the access token the API refused; compared in constant time, never logged.
    /// - Throws: as ``accessToken(client:provider:)``.
    public func accessToken(
        client: String, provider: String, replacing rejected: Secret
    ) async throws(VaultError)
        -> AccessToken
    {
        try Self.validate(client: client, provider: provider)
        guard let row = try await repository.find(client: client, provider: provider) else {
            return try await accessToken(client: client, provider: provider)
        }
        let rejection = Rejection(token: rejected, lastRefreshedAt: row.lastRefreshedAt)
        let stored = try await auditingOpen(row, { (row) throws(VaultError) in try openValidAccessToken(row) })
        if let stored, rejection.accepts(stored, row: row) {
            try await auditRead(row, fields: "access_token")
            return stored
        }
        if stored != nil, auditEnabled {
            // The stored token is the one the API refused: record that before it is replaced.
            try await appendAudit(
                .row(
                    .invalidated, client: client, provider: provider, keyID: row.keyID,
                    details: ["field": .string("access_token")]))
        }
        return try await flights.run(client: client, provider: provider) { () throws(VaultError) in
            try await self.refreshWithLease(client: client, provider: provider, rejecting: rejection)
        }
    }

    /// Whether tokens are stored for (client, provider), or a fallback refresh token is configured for it.
    public func hasToken(client: String, provider: String) async throws(VaultError) -> Bool {
        try Self.validate(client: client, provider: provider)
        if configuration.providers[provider]?.fallbackRefreshToken != nil { return true }
        return try await repository.find(client: client, provider: provider) != nil
    }

    /// Exchanges an authorization code (Zoho: a self-client "grant token") at the provider's token endpoint and
    /// stores the tokens. The usual way to onboard an account.
    ///
    /// A code is single-use, so the request is sent once, without retries.
    ///
    /// - Throws: `.unknownProvider` when no token endpoint is configured for `provider`; `.needsReauthorization`
    ///   when the provider refused the code (used or expired); `.providerConfiguration` when it refused the app's
    ///   credentials; `.providerError`, `.timedOut` or `.rateLimited` when the endpoint failed.
    @discardableResult
    public func exchange(code: Secret, client: String, provider: String) async throws(VaultError) -> AccessToken {
        try await exchange(code: code, client: client, provider: provider, accountsServer: nil, location: nil)
    }

    /// Exchanges an authorization code as ``exchange(code:client:provider:)`` does, at the account's own accounts
    /// server (Zoho's data centres), and stores that server with the row: its refreshes and its revocation go
    /// there too. With neither argument, a provider with servers per data centre stores its default server, where
    /// the code was exchanged (and ``exchange(code:client:provider:)`` does the same).
    ///
    /// - Parameters:
    ///   - code: the authorization code (a Zoho self-client grant token, say); single-use.
    ///   - client: the client (tenant, account) to store the tokens for.
    ///   - provider: the provider to exchange at and store under, such as `zoho_crm`.
    ///   - accountsServer: the account's accounts server, such as `https://accounts.zoho.eu`; nil for the
    ///     provider's default (or the one `location` names).
    ///   - location: the account's data centre by name (`us`, `eu`, `in`, `au`, `jp`, `ca`, `sa`, `uk`, `cn` for
    ///     Zoho); must agree with `accountsServer` when both are given.
    /// - Throws: `.accountsServerRefused` (nothing sent) when the server or location is not one the provider
    ///   trusts (``OAuthProvider/accountsServers``); otherwise as ``exchange(code:client:provider:)``.
    @discardableResult
    public func exchange(
        code: Secret, client: String, provider: String, accountsServer: String?, location: String?
    ) async throws(VaultError) -> AccessToken {
        try Self.validate(client: client, provider: provider)
        let configured = try providerConfiguration(provider)
        let server =
            try configured.resolveAccountsServer(accountsServer, location: location) ?? configured.defaultAccountsServer
        let endpointProvider = try configured.at(accountsServer: server)
        let result = await endpoint.exchange(provider: endpointProvider, code: code)
        switch result.outcome {
        case .success(let tokens):
            try await store(tokens, client: client, provider: provider, accountsServer: server, kind: .exchanged)
            logger.notice("exchanged an authorization code", metadata: Self.metadata(client, provider, nil))
            return AccessToken(
                value: tokens.accessToken!, expiresAt: tokens.expiresAt, scopes: tokens.scopes,
                metadata: tokens.metadata, refreshed: true)
        case .refused(let code):
            throw VaultError(
                .needsReauthorization,
                "the \(provider) token endpoint refused the authorization code (\(code)): codes are single-use and "
                    + "expire within minutes. Obtain a new one and exchange it at once."
            )
        case .failed(let error):
            throw error
        }
    }

    /// The refresh state of (client, provider), without secrets; nothing is opened or refreshed.
    /// - Throws: `.notFound` when nothing is stored.
    public func status(client: String, provider: String) async throws(VaultError) -> TokenStatus {
        try Self.validate(client: client, provider: provider)
        guard let row = try await repository.find(client: client, provider: provider) else {
            throw Self.notFound(client: client, provider: provider)
        }
        let valid = row.isAccessTokenValid(margin: configuration.refreshMargin)
        return TokenStatus(
            clientID: row.clientID, provider: row.provider, keyID: row.keyID,
            expiresAt: row.expiresAt.map { Date(timeIntervalSince1970: $0) }, accessTokenValid: valid,
            needsReauthorization: row.needsReauthorization, lastRefreshError: row.lastRefreshError,
            lastRefreshedAt: row.lastRefreshedAt.map { Date(timeIntervalSince1970: $0) },
            updatedAt: Date(timeIntervalSince1970: row.updatedAt), version: row.version,
            accountsServer: row.accountsServer)
    }

    /// The row's access token, opened, if it is valid for longer than the margin; nil otherwise.
    package func openValidAccessToken(_ row: SealedRow) throws(VaultError) -> AccessToken? {
        guard row.isAccessTokenValid(margin: configuration.refreshMargin) else { return nil }
        let value: Secret
        do {
            guard let opened = try sealer.openAccessToken(row) else { return nil }
            value = opened
        } catch {
            throw auditOpenFailure(error, row: row)
        }
        return AccessToken(
            value: value, expiresAt: row.expiresAt.map { Date(timeIntervalSince1970: $0) }, scopes: row.scopes,
            metadataJSON: row.metadataJSON, refreshed: false)
    }

    /// The opened tokens' access token, if it is valid for longer than `margin` (by default the configured
    /// refresh margin); nil otherwise.
    func validAccessToken(_ tokens: StoredTokens, margin: TimeInterval? = nil) -> AccessToken? {
        guard let value = tokens.accessToken,
            tokens.isAccessTokenValid(margin: margin ?? configuration.refreshMargin)
        else {
            return nil
        }
        return AccessToken(
            value: value, expiresAt: tokens.expiresAt, scopes: tokens.scopes, metadataJSON: tokens.metadataJSON,
            refreshed: false)
    }

    func providerConfiguration(_ provider: String) throws(VaultError) -> OAuthProvider {
        guard let configured = configuration.providers[provider] else {
            throw VaultError(
                .unknownProvider,
                "no token endpoint is configured for provider '\(provider)': register an OAuthProvider named "
                    + "'\(provider)' in the VaultConfiguration (OAuthProvider.zoho(…) for Zoho's products).")
        }
        return configured
    }
}
