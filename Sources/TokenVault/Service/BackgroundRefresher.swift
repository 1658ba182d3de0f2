import Foundation

/// Refreshes access tokens before requests need them: a ``Vault/refreshDue(within:concurrency:progress:)`` pass
/// every `interval` seconds, until its task is cancelled.
///
/// Run it in a task of its own next to the service that uses the vault, in as many processes as you like: with
/// the refresh lease, refreshers and request paths together make one provider call per token.
///
/// ```swift
/// let refresher = BackgroundRefresher(vault: vault, interval: 60)
/// let task = Task { await refresher.run() }
/// // … at shutdown: the pass under way finishes the refreshes it started, then run() returns.
/// task.cancel()
/// await task.value
/// ```
public struct BackgroundRefresher: Sendable {
    /// The vault whose tokens are refreshed.
    public let vault: Vault
    /// Seconds between the end of one pass and the start of the next.
    public var interval: TimeInterval
    /// The window of ``Vault/refreshDue(within:concurrency:progress:)``; nil: its default (the refresh margin plus
    /// a minute).
    public var within: TimeInterval?
    /// Rows refreshed at once in a pass.
    public var concurrency: Int
    /// Called after each pass with its report, or with the error that stopped it (the database was unreachable,
    /// say); the refresher goes on either way.
    public var onPass: (@Sendable (Result<RefreshDueReport, VaultError>) -> Void)?

    /// A refresher; nothing runs until ``run()``.
    /// - Parameters:
    ///   - vault: the vault whose tokens are refreshed.
    ///   - interval: seconds between the end of one pass and the start of the next (default 60).
    ///   - within: the window of a pass; nil for its default.
    ///   - concurrency: rows refreshed at once (default 8).
    ///   - onPass: called after each pass with its report or error.
    public init(
        vault: Vault, interval: TimeInterval = 60, within: TimeInterval? = nil, concurrency: Int = 8,
        onPass: (@Sendable (Result<RefreshDueReport, VaultError>) -> Void)? = nil
    ) {
        self.vault = vault
        self.interval = interval
        self.within = within
        self.concurrency = concurrency
        self.onPass = onPass
    }

    /// Runs passes until the task is cancelled, then returns once the refreshes under way are written.
    ///
    /// A pass that fails (the database is unreachable, a setting is out of range) is reported to ``onPass`` and
    /// tried again after the interval; a failed row never stops a pass.
    public func run() async {
        while !Task.isCancelled {
            do throws(VaultError) {
                let report = try await vault.refreshDue(within: within, concurrency: concurrency)
                onPass?(.success(report))
            } catch {
                if error.code == .cancelled || Task.isCancelled { return }
                onPass?(.failure(error))
            }
            do {
                try await Task.sleep(for: .milliseconds(Int64(max(0, interval) * 1000)))
            } catch {
                return
            }
        }
    }
}
