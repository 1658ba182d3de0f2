import Foundation

extension Vault {
    /// What a refresh decided inside its transaction. Failures are returned rather than thrown so that what
    /// the transaction recorded (a refused refresh token, the attempts made) is committed, not rolled back.
    private enum RefreshOutcome: Sendable {
        case token(AccessToken)
        /// This call refreshed the row: logged once the transaction has committed.
        case refreshed(AccessToken, keyID: KeyID, version: Int64, attempts: Int)
        case failed(VaultError)
        /// Someone stored other tokens between our read and our write: theirs are newer.
        case replaced
    }

    /// The refresh itself, under the row's refresh lock, in one transaction.
    ///
    /// This is the seam that the refresh redesign replaces: the provider is called while the transaction (and
    /// its connection) is held.
    func refreshUnderLock(client: String, provider: String) async throws(VaultError) -> AccessToken {
        let endpointProvider = try providerConfiguration(provider)
        let policy = configuration.refreshPolicy
        let outcome = try await repository.withRefreshLock(
            client: client, provider: provider, lockTimeout: policy.lockTimeout,
            idleTimeout: policy.longestRefresh + 10
        ) { (transaction) throws(VaultError) -> RefreshOutcome in
            let row = try await transaction.row(client: client, provider: provider)
            let stored = try row.map { (row) throws(VaultError) in try open(row) }
            if let stored, let token = validAccessToken(stored) {
                return .token(token)  // someone else refreshed while we waited for the lock
            }
            if let row, row.needsReauthorization {
                return .failed(
                    Self.reauthorizationNeeded(client: client, provider: provider, reason: row.lastRefreshError))
            }
            guard let refreshToken = stored?.refreshToken ?? endpointProvider.fallbackRefreshToken else {
                return .failed(Self.noTokens(client: client, provider: provider))
            }
            let budget: Int
            do throws(VaultError) {
                budget = try rateBudget(row: row, provider: endpointProvider, client: client)
            } catch {
                return .failed(error)
            }
            let result = await endpoint.refresh(
                provider: endpointProvider, refreshToken: refreshToken, maximumAttempts: budget)
            switch result.outcome {
            case .success(let tokens):
                let sealed = try sealer.sealRow(tokens, client: client, provider: provider)
                let written =
                    if let row {
                        try await transaction.storeRefreshed(
                            sealed, expectedVersion: row.version, attempts: result.attempts)
                    } else {
                        try await transaction.insertRefreshed(sealed, attempts: result.attempts)
                    }
                guard let written else { return .replaced }
                return .refreshed(
                    AccessToken(
                        value: tokens.accessToken!, expiresAt: tokens.expiresAt, scopes: tokens.scopes ?? row?.scopes,
                        metadataJSON: written.metadataJSON, refreshed: true),
                    keyID: sealed.keyID, version: written.version, attempts: result.attempts)
            case .refused(let code):
                let message = "the provider refused the refresh token (\(code))"
                if let row {
                    try await transaction.recordRefreshFailure(
                        client: row.clientID, provider: row.provider, expectedVersion: row.version,
                        needsReauthorization: true, message: message, attempts: result.attempts)
                }
                logger.error(
                    "refresh token refused; the user must authorize again",
                    metadata: Self.metadata(client, provider, row?.keyID))
                return .failed(Self.reauthorizationNeeded(client: client, provider: provider, reason: message))
            case .failed(let error):
                if let row {
                    try await transaction.recordRefreshFailure(
                        client: row.clientID, provider: row.provider, expectedVersion: row.version,
                        needsReauthorization: false, message: error.message, attempts: result.attempts)
                }
                return .failed(error)
            }
        }
        switch outcome {
        case .token(let token):
            return token
        case .refreshed(let token, let keyID, let version, let attempts):
            logger.info(
                "refreshed access token",
                metadata: Self.metadata(client, provider, keyID).merging(
                    [LogKey.version: "\(version)", LogKey.attempts: "\(attempts)"]) { $1 })
            return token
        case .failed(let error):
            throw error
        case .replaced:
            logger.warning(
                "row changed during refresh; keeping the newer tokens", metadata: Self.metadata(client, provider, nil))
            let current = try await fetch(client: client, provider: provider)
            if let token = validAccessToken(current) { return token }
            throw VaultError(
                .conflict,
                "the tokens of client '\(client)', provider '\(provider)' were replaced while refreshing; try again.")
        }
    }

    /// How many requests the provider's rate limit still allows; throws `.rateLimited` when none.
    private func rateBudget(row: SealedRow?, provider: OAuthProvider, client: String) throws(VaultError) -> Int {
        let attempts = configuration.refreshPolicy.attempts
        guard let limit = provider.refreshRateLimit else { return attempts }
        let now = Date().timeIntervalSince1970
        let recent = (row?.refreshHistory ?? []).filter { $0 > now - limit.window }.sorted()
        let left = limit.count - recent.count
        guard left > 0 else {
            let wait = Int((recent[recent.count - limit.count] + limit.window - now).rounded(.up))
            throw VaultError(
                .rateLimited,
                "refreshing now would exceed \(provider.name)'s limit of \(limit.count) refreshes per refresh token "
                    + "per \(Int(limit.window / 60)) minutes (client '\(client)'); the vault did not call the "
                    + "provider. The next refresh is possible in \(max(1, wait)) s.",
                retryAfter: .seconds(max(1, wait)))
        }
        return min(attempts, left)
    }

    /// Neither a row nor a fallback refresh token.
    static func noTokens(client: String, provider: String) -> VaultError {
        VaultError(
            .notFound,
            "no tokens are stored for client '\(client)', provider '\(provider)', and the provider has no fallback "
                + "refresh token; store tokens first (store(_:client:provider:) or exchange(code:client:provider:)).")
    }

    static func reauthorizationNeeded(client: String, provider: String, reason: String?) -> VaultError {
        VaultError(
            .needsReauthorization,
            "client '\(client)' must authorize \(provider) again: \(reason ?? "the provider refused the refresh token"). "
                + "The vault will not call the provider until new tokens are stored for this client and provider.")
    }
}
