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
    /// How long a caller waits for another process's refresh before giving up with `.timedOut`.
    public var lockTimeout: TimeInterval

    /// A policy; times are in seconds. `attempts` below 1 counts as 1. Without `lockTimeout`, the wait for
    /// another process's refresh covers that refresh's worst case: every attempt timing out after the longest
    /// backoff, plus 5 seconds. ``VaultConfiguration/validate()`` checks the ranges.
    public init(
        requestTimeout: TimeInterval = 10, attempts: Int = 3, initialBackoff: TimeInterval = 0.5,
        maximumBackoff: TimeInterval = 4, lockTimeout: TimeInterval? = nil
    ) {
        self.requestTimeout = requestTimeout
        self.attempts = max(1, attempts)
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.lockTimeout =
            lockTimeout ?? Double(max(1, attempts)) * (requestTimeout + maximumBackoff) + 5
    }

    /// The longest a refresh can hold its lock: every attempt timing out, with every backoff.
    var longestRefresh: TimeInterval { Double(attempts) * (requestTimeout + maximumBackoff) + 5 }

    /// Delay before attempt `attempt` (2, 3, …): exponential with jitter in [50%, 100%].
    func backoff(beforeAttempt attempt: Int) -> TimeInterval {
        let exponential = initialBackoff * pow(2, Double(max(0, attempt - 2)))
        return min(maximumBackoff, exponential) * Double.random(in: 0.5...1.0)
    }
}
