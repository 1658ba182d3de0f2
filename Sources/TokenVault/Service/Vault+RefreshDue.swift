import Foundation

/// What one pass of ``Vault/refreshDue(within:concurrency:progress:)`` did, row by row. No token, no secret.
public struct RefreshDueReport: Sendable, Equatable, Codable {
    /// Rows whose access token was missing or expired within the window when the pass began.
    public var due = 0
    /// Rows this pass refreshed at the provider.
    public var refreshed = 0
    /// Rows another caller had refreshed by the time this pass claimed them: nothing to do.
    public var alreadyFresh = 0
    /// Rows another caller (a request path or another refresher) was refreshing at that moment: left to it.
    public var refreshingElsewhere = 0
    /// Rows marked for re-authorization: the provider refused their refresh token; not sent again.
    public var needsReauthorization = 0
    /// Rows whose provider is not configured here.
    public var unknownProvider = 0
    /// Rows whose refresh failed, by ``VaultError/Code`` (such as `rateLimited`, `providerError`, `timedOut`).
    public var failed: [String: Int] = [:]
    /// Seconds the pass took.
    public var seconds = 0.0
    /// Whether the pass stopped early because its task was cancelled: the refreshes under way were finished and
    /// written, no more were started.
    public var stopped = false

    /// Rows handled so far (every outcome).
    public var done: Int {
        refreshed + alreadyFresh + refreshingElsewhere + needsReauthorization + unknownProvider
            + failed.values.reduce(0, +)
    }

    /// An empty report.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case due, refreshed, failed, seconds, stopped
        case alreadyFresh = "already_fresh", refreshingElsewhere = "refreshing_elsewhere"
        case needsReauthorization = "needs_reauthorization", unknownProvider = "unknown_provider"
    }
}

extension Vault {
    /// One pass of the background refresher: refreshes every access token that is missing or expires within
    /// `within` seconds, at most `concurrency` at a time, so that request paths find them fresh.
    ///
    /// Each row goes through the same lease as ``accessToken(client:provider:)``, so refreshers and request paths
    /// in any number of processes make exactly one provider call per token: a row whose lease another caller holds
    /// is left to it (``RefreshDueReport/refreshingElsewhere``), never waited for. Rows marked for
    /// re-authorization are counted, not sent again; the provider's rate cap and retries apply as for
    /// `accessToken`. A failed row is counted by its error code and the pass goes on. The rows are read in pages in
    /// key order, so memory stays flat however many there are.
    ///
    /// Cancelling the calling task stops the pass without losing anything: no further row is started, and the
    /// refreshes under way finish and write what the provider answered (a rotated refresh token exists nowhere
    /// else); the report then says ``RefreshDueReport/stopped``.
    ///
    /// - Parameters:
    ///   - within: the window, in seconds; default ``VaultConfiguration/refreshMargin`` plus a minute.
    ///   - concurrency: rows refreshed at once, 1 to 1000 (no connection is held while a provider answers).
    ///   - progress: called with the report so far as rows are done.
    /// - Throws: `.invalidInput` for a window or concurrency out of range; a database error that stops the pass.
    @discardableResult
    public func refreshDue(
        within: TimeInterval? = nil, concurrency: Int = 8,
        progress: (@Sendable (RefreshDueReport) -> Void)? = nil
    ) async throws(VaultError) -> RefreshDueReport {
        let window = within ?? configuration.refreshMargin + 60
        guard window.isFinite, window >= 0, window <= 86_400 * 365 else {
            throw VaultError(.invalidInput, "the refresh window must be 0 to 31536000 seconds, not \(window).")
        }
        guard (1...1000).contains(concurrency) else {
            throw VaultError(.invalidInput, "the concurrency must be 1 to 1000, not \(concurrency).")
        }
        let started = Date()
        let cutoff = Int64(((started.timeIntervalSince1970 + window) * 1_000_000).rounded())
        var report = RefreshDueReport()
        var cursor: (client: String, provider: String)?
        while !Task.isCancelled {
            let page = try await repository.dueRows(after: cursor, cutoff: cutoff, limit: 500)
            guard let last = page.last else { break }
            cursor = (last.client, last.provider)
            report.due += page.count
            await withTaskGroup(of: RowOutcome.self) { group in
                var running = 0
                // In an order of its own: refreshers that read the same page at once then seldom reach for the same
                // row at the same moment (the lease would turn the second away, after a wasted claim).
                for row in page.shuffled() {
                    if running == concurrency, let outcome = await group.next() {
                        report.count(outcome)
                        running -= 1
                        progress?(report)
                    }
                    if Task.isCancelled { break }
                    // Unstructured, so that cancelling the pass cannot cut a refresh between the provider's answer
                    // and its write.
                    group.addTask { await Task { await self.refreshIfDue(row, margin: window) }.value }
                    running += 1
                }
                for await outcome in group {
                    report.count(outcome)
                    progress?(report)
                }
            }
        }
        report.stopped = Task.isCancelled && report.done < report.due
        report.seconds = Date().timeIntervalSince(started)
        if report.refreshed > 0 || report.done > 0 {
            logger.info(
                "refreshed due access tokens",
                metadata: [
                    "due": "\(report.due)", "refreshed": "\(report.refreshed)",
                    "failed": "\(report.failed.values.reduce(0, +))",
                    "needs_reauthorization": "\(report.needsReauthorization)",
                ])
        }
        return report
    }

    enum RowOutcome: Sendable {
        case refreshed, fresh, elsewhere, needsReauthorization, unknownProvider
        case failed(VaultError.Code)
    }

    /// One due row: claims its lease, or leaves it to whoever holds it; refreshes unless it is fresh by now.
    private func refreshIfDue(_ row: DueRow, margin: TimeInterval) async -> RowOutcome {
        if row.needsReauthorization { return .needsReauthorization }
        guard let provider = configuration.providers[row.provider] else { return .unknownProvider }
        let holder = UUID()
        do throws(VaultError) {
            let claim = try await repository.claimRefreshLease(
                client: row.client, provider: row.provider, holder: holder,
                duration: configuration.refreshPolicy.leaseDuration, window: provider.refreshRateLimit?.window ?? 3600)
            guard case .claimed(let state) = claim else { return .elsewhere }
            switch try await refresh(
                holding: holder, state: state, provider: provider, client: row.client, rejecting: nil, margin: margin)
            {
            case .token(let token): return token.refreshed ? .refreshed : .fresh
            case .leaseLost: return .elsewhere
            }
        } catch {
            return error.code == .needsReauthorization ? .needsReauthorization : .failed(error.code)
        }
    }
}

extension RefreshDueReport {
    fileprivate mutating func count(_ outcome: Vault.RowOutcome) {
        switch outcome {
        case .refreshed: refreshed += 1
        case .fresh: alreadyFresh += 1
        case .elsewhere: refreshingElsewhere += 1
        case .needsReauthorization: needsReauthorization += 1
        case .unknownProvider: unknownProvider += 1
        case .failed(let code): failed["\(code)", default: 0] += 1
        }
    }
}
