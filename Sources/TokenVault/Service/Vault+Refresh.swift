import Foundation
import Synchronization
import Tracing

/// An access token an API refused (HTTP 401), reported through ``Vault/accessToken(client:provider:replacing:)``:
/// the refresh that follows must not hand it out again.
struct Rejection: Sendable {
    let token: Secret
    /// When the row was last refreshed as the caller reported it.
    let lastRefreshedAt: Double?

    /// Whether `token`, read from `row`, may be handed out: it is another token, or a refresh stored it after the
    /// report (a provider may issue the same value again).
    func accepts(_ token: AccessToken, row: SealedRow) -> Bool {
        !(token.value == self.token) || row.lastRefreshedAt != lastRefreshedAt
    }
}

extension Vault {
    /// Single flight across processes: claims the row's refresh lease and refreshes, or waits for the process
    /// that holds it and returns its result (docs/refresh.md). No connection and no transaction is held while the
    /// provider is called, or while this call waits.
    /// - Parameter rejection: a token an API refused, which this refresh must replace (nil: an expired token).
    func refreshWithLease(
        client: String, provider: String, rejecting rejection: Rejection? = nil
    ) async throws(VaultError) -> AccessToken {
        guard let tracer else {
            return try await leasedRefresh(client: client, provider: provider, rejecting: rejection)
        }
        // One span for the refresh, parent of its database calls' spans; attributes name the row, never a token.
        let span = tracer.startSpan("token_vault.refresh", ofKind: .internal)
        span.attributes["token_vault.client"] = client
        span.attributes["token_vault.provider"] = provider
        defer { span.end() }
        do {
            let token = try await ServiceContext.withValue(span.context) {
                try await self.leasedRefresh(client: client, provider: provider, rejecting: rejection)
            }
            span.attributes["token_vault.refreshed"] = token.refreshed
            return token
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            if let error = error as? VaultError { throw error }
            throw VaultError(.providerError, "the refresh failed (\(type(of: error))).", underlying: error)
        }
    }

    private func leasedRefresh(
        client: String, provider: String, rejecting rejection: Rejection?
    ) async throws(VaultError) -> AccessToken {
        let endpointProvider = try providerConfiguration(provider)
        let policy = configuration.refreshPolicy
        let window = endpointProvider.refreshRateLimit?.window ?? 3600
        let holder = UUID()
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(policy.waitTimeout * 1000))
        var state: RefreshState?  // nil until read: the first round claims at once
        var waitingSince: Int64?  // server time of the first claim that found another holder
        var delay = 0.02
        while true {
            if state?.leaseIsFree ?? true {
                switch try await repository.claimRefreshLease(
                    client: client, provider: provider, holder: holder, duration: policy.leaseDuration, window: window)
                {
                case .claimed(let claimed):
                    if let expired = state?.leaseRemaining {
                        logger.warning(
                            "took over a refresh lease that expired \(-expired) ms ago; its holder died or froze",
                            metadata: Self.metadata(client, provider, nil))
                    }
                    switch try await refresh(
                        holding: holder, state: claimed, provider: endpointProvider, client: client,
                        rejecting: rejection)
                    {
                    case .token(let token):
                        return token
                    case .leaseLost:
                        // The database kept this call waiting past its lease, and another caller took the refresh
                        // over before the provider was called: wait for that one instead.
                        logger.warning(
                            "lost the refresh lease before calling the provider; waiting for its new holder",
                            metadata: Self.metadata(client, provider, nil))
                        state = nil
                        continue
                    }
                case .held(let at):
                    if waitingSince == nil {
                        waitingSince = at
                        metrics.leaseWait(provider: provider)
                    }
                }
            }
            let now = try await repository.refreshState(client: client, provider: provider, window: window)
            state = now
            if let row = now.row, let token = try openValidAccessToken(row),
                rejection?.accepts(token, row: row) ?? true
            {
                return token
            }
            if let row = now.row, row.needsReauthorization {
                throw Self.reauthorizationNeeded(client: client, provider: provider, reason: row.lastRefreshError)
            }
            if now.row == nil && endpointProvider.fallbackRefreshToken == nil {
                throw Self.noTokens(client: client, provider: provider)
            }
            if now.leaseRemaining == nil, let waitingSince, let failedAt = now.lastFailureAt, failedAt >= waitingSince {
                // The holder released its lease after recording a failure while this call waited: report it
                // rather than call the provider again.
                throw VaultError(
                    .providerError,
                    "another process refreshed the token of client '\(client)', provider '\(provider)' at the same "
                        + "time, and its refresh failed: \(now.row?.lastRefreshError ?? "no reason recorded")")
            }
            if !now.leaseIsFree {
                guard clock.now < deadline else {
                    throw VaultError(
                        .timedOut,
                        "another process has been refreshing the token of client '\(client)', provider "
                            + "'\(provider)' for more than \(VaultError.seconds(policy.waitTimeout)); try again shortly."
                    )
                }
                try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
                delay = min(delay * 1.5, 0.25)
            }
        }
    }

    enum HolderOutcome {
        case token(AccessToken)
        /// The lease expired before a request and another caller took it: nothing was sent, nothing recorded.
        case leaseLost
    }

    /// The refresh itself, by the holder of the lease: decides, calls the provider with nothing held (renewing the
    /// lease and counting each request before it is sent, and calling only while the lease is held), then writes
    /// the result and releases the lease in one statement. When it throws, the lease is released.
    /// - Parameter margin: a stored token valid for longer than this is returned without a refresh (by default the
    ///   configured refresh margin; the background refresher passes its window).
    func refresh(
        holding holder: UUID, state: RefreshState, provider endpointProvider: OAuthProvider, client: String,
        rejecting rejection: Rejection?, margin: TimeInterval? = nil
    ) async throws(VaultError) -> HolderOutcome {
        do throws(VaultError) {
            return try await holderRefresh(
                holder, state: state, provider: endpointProvider, client: client, rejecting: rejection, margin: margin)
        } catch {
            // Usually released already, with the write that recorded the failure; this makes sure.
            try? await repository.releaseRefreshLease(client: client, provider: endpointProvider.name, holder: holder)
            throw error
        }
    }

    private func holderRefresh(
        _ holder: UUID, state: RefreshState, provider endpointProvider: OAuthProvider, client: String,
        rejecting rejection: Rejection?, margin: TimeInterval?
    ) async throws(VaultError) -> HolderOutcome {
        let provider = endpointProvider.name
        let row = state.row
        let stored = try row.map { (row) throws(VaultError) in try open(row) }
        if let stored, let row, let token = validAccessToken(stored, margin: margin),
            rejection?.accepts(token, row: row) ?? true
        {
            // Another process refreshed it just before this call claimed the lease.
            try? await repository.releaseRefreshLease(client: client, provider: provider, holder: holder)
            return .token(token)
        }
        if let row, row.needsReauthorization {
            throw Self.reauthorizationNeeded(client: client, provider: provider, reason: row.lastRefreshError)
        }
        guard let refreshToken = stored?.refreshToken ?? endpointProvider.fallbackRefreshToken else {
            throw Self.noTokens(client: client, provider: provider)
        }
        let budget = try rateBudget(state.recentRequestAges, provider: endpointProvider, client: client)
        // The account's own accounts server (Zoho's data centres), checked again against the trusted ones.
        let accountProvider = try endpointProvider.at(accountsServer: row?.accountsServer)

        let repository = self.repository
        let policy = configuration.refreshPolicy
        let window = endpointProvider.refreshRateLimit?.window ?? 3600
        let leaseLost = LeaseLost()
        let requested = ContinuousClock.now
        let result = await endpoint.refresh(
            provider: accountProvider, refreshToken: refreshToken, maximumAttempts: budget
        ) { _ in
            do throws(VaultError) {
                if try await repository.recordRefreshAttempt(
                    client: client, provider: provider, holder: holder, duration: policy.leaseDuration,
                    window: window)
                {
                    return nil
                }
                leaseLost.set()
                return VaultError(.timedOut, "the refresh lease expired before the request")  // not shown: see below
            } catch {
                return error
            }
        }
        if result.attempts > 0 {
            let (seconds, attoseconds) = (ContinuousClock.now - requested).components
            metrics.refreshDuration(
                provider: provider, nanoseconds: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        }
        switch result.outcome {
        case .failed where leaseLost.isSet:
            // Lost before the first request or a retry (the answers so far were failures): the new holder asks.
            return .leaseLost
        case .success(let tokens):
            let sealed = try sealer.sealRow(tokens, client: client, provider: provider)
            let written =
                if let row {
                    try await storeRefreshed(
                        sealed, over: row, using: refreshToken, holder: holder, attempts: result.attempts)
                } else {
                    try await audited(chains: [AuditEvent.chain(client: client, provider: provider)]) {
                        (transaction) throws(VaultError) in
                        let written = try await repository.insertRefreshed(sealed, holder: holder, in: transaction)
                        return (
                            written,
                            written == nil
                                ? []
                                : [
                                    Self.refreshedEvent(
                                        client: client, provider: provider, keyID: sealed.keyID,
                                        attempts: result.attempts, fallback: true)
                                ]
                        )
                    }
                }
            guard let written else {
                try? await repository.releaseRefreshLease(client: client, provider: provider, holder: holder)
                logger.warning(
                    "new tokens were stored during the refresh; keeping them",
                    metadata: Self.metadata(client, provider, nil))
                let current = try await fetch(client: client, provider: provider)
                if let token = validAccessToken(current) { return .token(token) }
                throw VaultError(
                    .conflict,
                    "the tokens of client '\(client)', provider '\(provider)' were replaced while refreshing; try "
                        + "again.")
            }
            eventHub.emit(.refreshed(client: client, provider: provider, keyID: sealed.keyID))
            metrics.refresh(provider: provider, outcome: "refreshed")
            logger.info(
                "refreshed access token",
                metadata: Self.metadata(client, provider, sealed.keyID).merging(
                    [LogKey.version: "\(written.version)", LogKey.attempts: "\(result.attempts)"]) { $1 })
            return .token(
                AccessToken(
                    value: tokens.accessToken!, expiresAt: tokens.expiresAt, scopes: tokens.scopes ?? row?.scopes,
                    metadataJSON: written.metadataJSON, refreshed: true))
        case .refused(let code):
            let message = "the provider refused the refresh token (\(code))"
            try await recordFailure(
                row: row, using: refreshToken, client: client, provider: provider, needsReauthorization: true,
                message: message, holder: holder,
                event: .row(
                    .needsReauthorization, client: client, provider: provider, keyID: row?.keyID,
                    outcome: "\(VaultError.Code.needsReauthorization)",
                    details: ["provider_error": .string(code), "attempts": .number(Double(result.attempts))]))
            eventHub.emit(.needsReauthorization(client: client, provider: provider, reason: message))
            metrics.refresh(provider: provider, outcome: "needs_reauthorization")
            logger.error(
                "refresh token refused; the user must authorize again",
                metadata: Self.metadata(client, provider, row?.keyID))
            throw Self.reauthorizationNeeded(client: client, provider: provider, reason: message)
        case .failed(let error):
            var details: [String: JSONValue] = ["attempts": .number(Double(result.attempts))]
            if let providerError = error.providerErrorCode { details["provider_error"] = .string(providerError) }
            try await recordFailure(
                row: row, using: refreshToken, client: client, provider: provider, needsReauthorization: false,
                message: error.message, holder: holder,
                event: .row(
                    .refreshFailed, client: client, provider: provider, keyID: row?.keyID, outcome: "\(error.code)",
                    details: details))
            eventHub.emit(.refreshFailed(client: client, provider: provider, code: error.code, message: error.message))
            metrics.refresh(provider: provider, outcome: "\(error.code)")
            throw error
        }
    }

    /// Whether the lease was found lost before a request; set from the grant's callback.
    private final class LeaseLost: Sendable {
        private let lost = Mutex(false)
        var isSet: Bool { lost.withLock { $0 } }
        func set() { lost.withLock { $0 = true } }
    }

    /// Runs `write`, a compare-and-set on the row's version, first with the version read when the lease was
    /// claimed; when it loses but the row still holds the refresh token this refresh used (a key rotation
    /// re-sealed it, a failure was recorded), again over the new version: the refresh's result is the newest, and a
    /// rotated refresh token must not be lost. Nil when someone stored newer tokens (or the row is gone), or after
    /// five tries.
    private func compareAndSet<T: Sendable>(
        over row: SealedRow, using refreshToken: Secret, _ write: (Int64) async throws(VaultError) -> T?
    ) async throws(VaultError) -> T? {
        var expected = row.version
        for _ in 0..<5 {
            if let written = try await write(expected) { return written }
            guard let current = try await repository.find(client: row.clientID, provider: row.provider),
                try open(current).refreshToken == refreshToken
            else { return nil }
            expected = current.version
        }
        return nil
    }

    /// Writes refreshed tokens (see `compareAndSet`) and releases the lease. Nil when someone stored newer tokens.
    private func storeRefreshed(
        _ sealed: SealedRow, over row: SealedRow, using refreshToken: Secret, holder: UUID, attempts: Int
    ) async throws(VaultError) -> (version: Int64, metadataJSON: String)? {
        let (client, provider) = (row.clientID, row.provider)
        return try await compareAndSet(over: row, using: refreshToken) { (version) throws(VaultError) in
            let event = Self.refreshedEvent(
                client: client, provider: provider, keyID: sealed.keyID, attempts: attempts, fallback: false)
            if auditEnabled,
                case .decided(let written) = try await writeInOneStatement(
                    event, client: client, provider: provider,
                    { (record) throws(VaultError) in
                        try await repository.storeRefreshedAudited(
                            sealed, expectedVersion: version, holder: holder, record: record)
                    })
            {
                // Nil: the version moved; compareAndSet looks at the row.
                return written
            }
            return try await audited(chains: [AuditEvent.chain(client: client, provider: provider)]) {
                (transaction) throws(VaultError) in
                let written = try await repository.storeRefreshed(
                    sealed, expectedVersion: version, holder: holder, in: transaction)
                return (
                    written,
                    written == nil
                        ? []
                        : [
                            Self.refreshedEvent(
                                client: client, provider: provider, keyID: sealed.keyID, attempts: attempts,
                                fallback: false)
                        ]
                )
            }
        }
    }

    static func refreshedEvent(
        client: String, provider: String, keyID: KeyID, attempts: Int, fallback: Bool
    ) -> AuditDraft {
        var details: [String: JSONValue] = ["attempts": .number(Double(attempts))]
        if fallback { details["fallback_refresh_token"] = .bool(true) }
        return .row(.refreshed, client: client, provider: provider, keyID: keyID, details: details)
    }

    /// Records a failed refresh on the row (see `compareAndSet`) and releases the lease.
    private func recordFailure(
        row: SealedRow?, using refreshToken: Secret, client: String, provider: String, needsReauthorization: Bool,
        message: String, holder: UUID, event: AuditDraft
    ) async throws(VaultError) {
        if let row {
            let recorded = try await compareAndSet(over: row, using: refreshToken) { (version) throws(VaultError) in
                try await audited(chains: [event.chain]) { (transaction) throws(VaultError) in
                    let written = try await repository.recordRefreshFailure(
                        client: row.clientID, provider: row.provider, expectedVersion: version,
                        needsReauthorization: needsReauthorization, message: message, holder: holder,
                        in: transaction)
                    return (written ? () : nil, written ? [event] : [])
                }
            }
            if recorded != nil { return }
        }
        try await repository.releaseRefreshLease(client: client, provider: provider, holder: holder)
        // No row to record it on (a fallback refresh token failed, or the row changed): the event stands alone.
        if auditEnabled { try await appendAudit(event) }
    }

    /// How many requests the provider's rate limit still allows, from the ages of the recent requests (server
    /// clock, so a host whose clock is off cannot bypass it); throws `.rateLimited` when none.
    private func rateBudget(_ ages: [Double], provider: OAuthProvider, client: String) throws(VaultError) -> Int {
        let attempts = configuration.refreshPolicy.attempts
        guard let limit = provider.refreshRateLimit else { return attempts }
        let recent = ages.filter { $0 < limit.window }.sorted(by: >)  // oldest first
        let left = limit.count - recent.count
        guard left > 0 else {
            let wait = Int((limit.window - recent[recent.count - limit.count]).rounded(.up))
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
