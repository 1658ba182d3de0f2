import Foundation

extension Vault {
    /// The refresh itself, under the row's advisory lock, on one leased connection and in one transaction.
    func refreshUnderLock(client: String, provider: String) async throws(VaultError) -> AccessToken {
        let endpointProvider = try providerConfiguration(provider)
        let policy = configuration.refreshPolicy
        return try await pool.withLease { (lease) throws(VaultError) -> AccessToken in
            do throws(VaultError) {
                try await lease.runTyped { (connection) throws(VaultError) in
                    try TokenRepository.beginRefresh(
                        connection, client: client, provider: provider, lockTimeout: policy.lockTimeout,
                        idleTimeout: policy.longestRefresh + 10)
                }
            } catch {
                guard error.sqlState == TokenRepository.lockNotAvailable else { throw error }
                throw VaultError(
                    .timedOut,
                    "another process has been refreshing the token of client '\(client)', provider '\(provider)' "
                        + "for more than \(Int(policy.lockTimeout)) s; try again shortly.")
            }
            let row = try await lease.runTyped { (connection) throws(VaultError) in
                try TokenRepository.selectForRefresh(connection, client: client, provider: provider)
            }
            let stored = try row.map { (row) throws(VaultError) in try open(row) }
            if let stored, let token = validAccessToken(stored) {
                // Someone else refreshed while we waited for the lock.
                try await commit(lease)
                return token
            }
            if let row, row.needsReauthorization {
                try await commit(lease)
                throw Self.reauthorizationNeeded(client: client, provider: provider, reason: row.lastRefreshError)
            }
            guard let refreshToken = stored?.refreshToken ?? endpointProvider.fallbackRefreshToken else {
                try await commit(lease)
                throw Self.noTokens(client: client, provider: provider)
            }
            let budget = try rateBudget(row: row, provider: endpointProvider, client: client)
            let result = await endpoint.refresh(
                provider: endpointProvider, refreshToken: refreshToken, maximumAttempts: budget)
            switch result.outcome {
            case .success(let tokens):
                return try await storeRefreshed(
                    tokens, previous: row, client: client, provider: provider, attempts: result.attempts, lease: lease)
            case .refused(let code):
                let message = "the provider refused the refresh token (\(code))"
                try await recordFailure(
                    row, needsReauthorization: true, message: message, attempts: result.attempts, lease: lease)
                logger.error(
                    "refresh token refused; the user must authorize again",
                    metadata: Self.metadata(client, provider, row?.keyID))
                throw Self.reauthorizationNeeded(client: client, provider: provider, reason: message)
            case .failed(let error):
                try await recordFailure(
                    row, needsReauthorization: false, message: error.message, attempts: result.attempts, lease: lease)
                throw error
            }
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
                    + "provider. The next refresh is possible in \(max(1, wait)) s.")
        }
        return min(attempts, left)
    }

    private func storeRefreshed(
        _ tokens: TokenSet, previous: SealedRow?, client: String, provider: String, attempts: Int,
        lease: PooledConnection
    ) async throws(VaultError) -> AccessToken {
        let sealed = try sealer.sealRow(tokens, client: client, provider: provider)
        let written = try await lease.runTyped { (connection) throws(VaultError) in
            if let previous {
                return try TokenRepository.storeRefreshed(
                    connection, row: sealed, expectedVersion: previous.version, attempts: attempts)
            }
            return try TokenRepository.insertRefreshed(connection, row: sealed, attempts: attempts)
        }
        try await commit(lease)
        guard let written else {
            // Tokens were stored by someone else (a `put`) between our read and our write: theirs are newer.
            logger.warning(
                "row changed during refresh; keeping the newer tokens", metadata: Self.metadata(client, provider, nil))
            let current = try await fetch(client: client, provider: provider)
            if let token = validAccessToken(current) { return token }
            throw VaultError(
                .conflict,
                "the tokens of client '\(client)', provider '\(provider)' were replaced while refreshing; try again.")
        }
        logger.info(
            "refreshed access token",
            metadata: Self.metadata(client, provider, sealed.keyID).merging(
                ["token_vault.version": "\(written.version)", "token_vault.attempts": "\(attempts)"]) { $1 })
        return AccessToken(
            value: tokens.accessToken!, expiresAt: tokens.expiresAt, scopes: tokens.scopes ?? previous?.scopes,
            metadataJSON: written.metadataJSON, refreshed: true)
    }

    private func recordFailure(
        _ row: SealedRow?, needsReauthorization: Bool, message: String, attempts: Int, lease: PooledConnection
    ) async throws(VaultError) {
        guard let row else {
            try await commit(lease)
            return
        }
        try await lease.runTyped { (connection) throws(VaultError) in
            try TokenRepository.recordRefreshFailure(
                connection, client: row.clientID, provider: row.provider, expectedVersion: row.version,
                needsReauthorization: needsReauthorization, message: message, attempts: attempts)
            try TokenRepository.commit(connection)
        }
    }

    private func commit(_ lease: PooledConnection) async throws(VaultError) {
        try await lease.runTyped { (connection) throws(VaultError) in try TokenRepository.commit(connection) }
    }

    /// Neither a row nor a fallback refresh token: say how to store tokens.
    static func noTokens(client: String, provider: String) -> VaultError {
        let error = notFound(client: client, provider: provider)
        guard OAuthProvider.zohoProducts.contains(provider) else { return error }
        return VaultError(
            .notFound,
            error.message + " Or exchange a grant token with `token-vault exchange`, or set ZOHO_REFRESH_TOKEN.")
    }

    static func reauthorizationNeeded(client: String, provider: String, reason: String?) -> VaultError {
        VaultError(
            .needsReauthorization,
            "client '\(client)' must authorize \(provider) again: \(reason ?? "the provider refused the refresh token"). "
                + "The vault will not call the provider until new tokens are stored (`token-vault exchange` or "
                + "`token-vault put`).")
    }
}
