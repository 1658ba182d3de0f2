import Foundation

/// Timeouts and retries for talking to token endpoints.
public struct RefreshPolicy: Sendable {
    /// Seconds one HTTP exchange may take.
    public var requestTimeout: TimeInterval
    /// Attempts in all for a transient failure (network error, timeout, 429, 5xx, Zoho's "Access Denied").
    public var attempts: Int
    /// Backoff before the second attempt; doubles each time up to `maximumBackoff`, with jitter.
    public var initialBackoff: TimeInterval
    /// The longest backoff between two attempts, in seconds.
    public var maximumBackoff: TimeInterval
    /// How long a caller waits for another process's refresh of the same token before giving up with
    /// `.timedOut`. Unless set, 5 seconds longer than a refresh lease lasts (computed from the other fields
    /// whenever they change), so that a caller outlives the lease of a holder that died and takes the refresh over.
    public var waitTimeout: TimeInterval {
        get { chosenWaitTimeout ?? leaseDuration + 5 }
        set { chosenWaitTimeout = newValue }
    }
    private var chosenWaitTimeout: TimeInterval?

    /// The former name of ``waitTimeout``, from when a refresh held a database lock.
    @available(*, deprecated, renamed: "waitTimeout")
    public var lockTimeout: TimeInterval {
        get { waitTimeout }
        set { waitTimeout = newValue }
    }

    /// A policy; times are in seconds. ``VaultConfiguration/validate()`` checks the ranges.
    /// - Parameters:
    ///   - requestTimeout: seconds one HTTP exchange may take.
    ///   - attempts: attempts in all for a transient failure; below 1 counts as 1.
    ///   - initialBackoff: backoff before the second attempt.
    ///   - maximumBackoff: the longest backoff between two attempts.
    ///   - waitTimeout: how long a caller waits for another process's refresh; by default the lease time (every
    ///     attempt timing out, with the longest backoff between two, plus 10 seconds) plus 5 seconds.
    public init(
        requestTimeout: TimeInterval = 10, attempts: Int = 3, initialBackoff: TimeInterval = 0.5,
        maximumBackoff: TimeInterval = 4, waitTimeout: TimeInterval? = nil
    ) {
        self.requestTimeout = requestTimeout
        self.attempts = max(1, attempts)
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.chosenWaitTimeout = waitTimeout
    }

    /// The former initializer, from when ``waitTimeout`` was called `lockTimeout`.
    @available(*, deprecated, renamed: "init(requestTimeout:attempts:initialBackoff:maximumBackoff:waitTimeout:)")
    public init(
        requestTimeout: TimeInterval = 10, attempts: Int = 3, initialBackoff: TimeInterval = 0.5,
        maximumBackoff: TimeInterval = 4, lockTimeout: TimeInterval?
    ) {
        self.init(
            requestTimeout: requestTimeout, attempts: attempts, initialBackoff: initialBackoff,
            maximumBackoff: maximumBackoff, waitTimeout: lockTimeout)
    }

    /// How long a refresh lease lasts from its claim, and again from each request to the provider (the holder
    /// renews it then): the longest a refresh can take (every attempt timing out, with the longest backoff between
    /// two) plus 10 seconds to write its result. A lease older than this belongs to a holder that died or froze,
    /// and another caller takes the refresh over.
    var leaseDuration: TimeInterval {
        Double(attempts) * requestTimeout + Double(attempts - 1) * maximumBackoff + 10
    }

    /// Delay before attempt `attempt` (2, 3, …): exponential with jitter in [50%, 100%].
    func backoff(beforeAttempt attempt: Int) -> TimeInterval {
        let exponential = initialBackoff * pow(2, Double(max(0, attempt - 2)))
        return min(maximumBackoff, exponential) * Double.random(in: 0.5...1.0)
    }
}
