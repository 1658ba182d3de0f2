import Foundation

extension Vault {
    /// Single flight across processes: claims the row's refresh lease and refreshes, or waits for the process
    /// that holds it and returns its result (docs/refresh.md). No connection and no transaction is held while the
    /// provider is called, or while this call waits.
    func refreshWithLease(client: String, provider: String) async throws(VaultError) -> AccessToken {
        let endpointProvider = try providerConfiguration(provider)
        let policy = configuration.refreshPolicy
        let holder = UUID()
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(policy.waitTimeout * 1000))
        var state: RefreshState?  // nil until read: the first round claims at once
        var heldAt: Int64?  // the row's version when this call saw another process's lease
        var delay = 0.02
        while true {
            if state?.leaseIsFree ?? true {
                if let claimed = try await repository.claimRefreshLease(
                    client: client, provider: provider, holder: holder, duration: policy.leaseDuration)
                {
                    if let expired = state?.leaseRemaining {
                        logger.warning(
                            "took over a refresh lease that expired \(-expired) ms ago; its holder died or froze",
                            metadata: Self.metadata(client, provider, nil))
                    }
                    do throws(VaultError) {
                        return try await refresh(
                            holding: holder, row: claimed.row, provider: endpointProvider, client: client)
                    } catch {
                        // Mostly already released by the statement that recorded the failure; this makes sure.
                        try? await repository.releaseRefreshLease(client: client, provider: provider, holder: holder)
                        throw error
                    }
                }
            }
            let now = try await repository.refreshState(client: client, provider: provider)
            state = now
            if let row = now.row, let token = try openValidAccessToken(row) { return token }
            if let row = now.row, row.needsReauthorization {
                throw Self.reauthorizationNeeded(client: client, provider: provider, reason: row.lastRefreshError)
            }
            if now.row == nil && endpointProvider.fallbackRefreshToken == nil {
                throw Self.noTokens(client: client, provider: provider)
            }
            if now.leaseRemaining == nil, let heldAt, let row = now.row, row.version != heldAt,
                let failure = row.lastRefreshError
            {
                // The holder released its lease after recording a failure: report it rather than call again.
                throw VaultError(
                    .providerError,
                    "another process refreshed the token of client '\(client)', provider '\(provider)' at the same "
                        + "time, and its refresh failed: \(failure)")
            }
            if !now.leaseIsFree {
                if heldAt == nil { heldAt = now.row?.version ?? 0 }
                guard clock.now < deadline else {
                    throw VaultError(
                        .timedOut,
                        "another process has been refreshing the token of client '\(client)', provider "
                            + "'\(provider)' for more than \(Int(policy.waitTimeout)) s; try again shortly.")
                }
                try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
                delay = min(delay * 1.5, 0.25)
            }
        }
    }

    /// The refresh itself, by the holder of the lease: decides, calls the provider with nothing held, then writes
    /// the result and releases the lease in one statement. When it throws, the caller releases the lease.
    private func refresh(
        holding holder: UUID, row: SealedRow?, provider endpointProvider: OAuthProvider, client: String
    ) async throws(VaultError) -> AccessToken {
        let provider = endpointProvider.name
        let stored = try row.map { (row) throws(VaultError) in try open(row) }
        if let stored, let token = validAccessToken(stored) {
            // Another process refreshed it just before this call claimed the lease.
            try? await repository.releaseRefreshLease(client: client, provider: provider, holder: holder)
            return token
        }
        if let row, row.needsReauthorization {
            throw Self.reauthorizationNeeded(client: client, provider: provider, reason: row.lastRefreshError)
        }
        guard let refreshToken = stored?.refreshToken ?? endpointProvider.fallbackRefreshToken else {
            throw Self.noTokens(client: client, provider: provider)
        }
        let budget = try rateBudget(row: row, provider: endpointProvider, client: client)
        if row != nil { try await repository.recordRefreshAttempt(client: client, provider: provider) }

        let result = await endpoint.refresh(
            provider: endpointProvider, refreshToken: refreshToken, maximumAttempts: budget)
        let extraAttempts = row == nil ? result.attempts : max(0, result.attempts - 1)
        switch result.outcome {
        case .success(let tokens):
            let sealed = try sealer.sealRow(tokens, client: client, provider: provider)
            let written =
                if let row {
                    try await storeRefreshed(
                        sealed, over: row, using: refreshToken, extraAttempts: extraAttempts, holder: holder)
                } else {
                    try await repository.insertRefreshed(sealed, attempts: extraAttempts, holder: holder)
                }
            guard let written else {
                logger.warning(
                    "new tokens were stored during the refresh; keeping them",
                    metadata: Self.metadata(client, provider, nil))
                let current = try await fetch(client: client, provider: provider)
                if let token = validAccessToken(current) { return token }
                throw VaultError(
                    .conflict,
                    "the tokens of client '\(client)', provider '\(provider)' were replaced while refreshing; try "
                        + "again.")
            }
            logger.info(
                "refreshed access token",
                metadata: Self.metadata(client, provider, sealed.keyID).merging(
                    [LogKey.version: "\(written.version)", LogKey.attempts: "\(result.attempts)"]) { $1 })
            return AccessToken(
                value: tokens.accessToken!, expiresAt: tokens.expiresAt, scopes: tokens.scopes ?? row?.scopes,
                metadataJSON: written.metadataJSON, refreshed: true)
        case .refused(let code):
            let message = "the provider refused the refresh token (\(code))"
            try await recordFailure(
                row: row, client: client, provider: provider, needsReauthorization: true, message: message,
                extraAttempts: extraAttempts, holder: holder)
            logger.error(
                "refresh token refused; the user must authorize again",
                metadata: Self.metadata(client, provider, row?.keyID))
            throw Self.reauthorizationNeeded(client: client, provider: provider, reason: message)
        case .failed(let error):
            try await recordFailure(
                row: row, client: client, provider: provider, needsReauthorization: false, message: error.message,
                extraAttempts: extraAttempts, holder: holder)
            throw error
        }
    }

    /// Writes refreshed tokens with a compare-and-set on the version read when the lease was claimed. When the
    /// row changed meanwhile but still holds the refresh token this refresh used (a key rotation re-sealed it, or
    /// a failure was recorded), the new tokens are written over the new version: they are the newest, and a
    /// rotated refresh token must not be lost. When it holds another refresh token, someone stored newer tokens:
    /// theirs win (nil).
    private func storeRefreshed(
        _ sealed: SealedRow, over row: SealedRow, using refreshToken: Secret, extraAttempts: Int, holder: UUID
    ) async throws(VaultError) -> (version: Int64, metadataJSON: String)? {
        var expected = row.version
        for _ in 0..<5 {
            if let written = try await repository.storeRefreshed(
                sealed, expectedVersion: expected, extraAttempts: extraAttempts, holder: holder)
            {
                return written
            }
            guard let current = try await repository.find(client: row.clientID, provider: row.provider),
                try open(current).refreshToken == refreshToken
            else { return nil }
            expected = current.version
        }
        return nil
    }

    /// Records a failed refresh on the row (if any) and releases the lease.
    private func recordFailure(
        row: SealedRow?, client: String, provider: String, needsReauthorization: Bool, message: String,
        extraAttempts: Int, holder: UUID
    ) async throws(VaultError) {
        if let row {
            try await repository.recordRefreshFailure(
                client: row.clientID, provider: row.provider, expectedVersion: row.version,
                needsReauthorization: needsReauthorization, message: message, extraAttempts: extraAttempts,
                holder: holder)
        } else {
            try await repository.releaseRefreshLease(client: client, provider: provider, holder: holder)
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
