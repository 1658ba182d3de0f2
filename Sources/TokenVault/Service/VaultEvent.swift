import Foundation
import Synchronization

/// Something the vault did to a row's tokens that a service may want to act on: notify a customer whose account
/// must be reconnected, page someone when refreshes fail. Never carries a token.
public enum VaultEvent: Sendable, Equatable {
    /// The access token of (client, provider) was refreshed at the provider, and sealed under `keyID`.
    case refreshed(client: String, provider: String, keyID: KeyID)
    /// A refresh failed for a reason other than a refused refresh token (`code`, such as `providerError`,
    /// `timedOut` or `rateLimited`; `message` as the error's).
    case refreshFailed(client: String, provider: String, code: VaultError.Code, message: String)
    /// The provider refused the refresh token of (client, provider): the user must authorize again.
    case needsReauthorization(client: String, provider: String, reason: String)
    /// The refresh token of (client, provider) was revoked at the provider (or the provider no longer knew it),
    /// by ``Vault/delete(client:provider:revoke:)``; the row is deleted next.
    case revoked(client: String, provider: String)
}

/// Hands each event to every subscriber of ``Vault/events(bufferingNewest:)``.
final class EventHub: Sendable {
    private let subscribers = Mutex<[UUID: AsyncStream<VaultEvent>.Continuation]>([:])

    func subscribe(bufferingNewest limit: Int) -> AsyncStream<VaultEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: VaultEvent.self, bufferingPolicy: .bufferingNewest(max(1, limit)))
        let id = UUID()
        continuation.onTermination = { [weak self] _ in
            self?.subscribers.withLock { _ = $0.removeValue(forKey: id) }
        }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    func emit(_ event: VaultEvent) {
        let continuations = subscribers.withLock { Array($0.values) }
        for continuation in continuations { continuation.yield(event) }
    }

    func finish() {
        let continuations = subscribers.withLock { subscribers in
            defer { subscribers.removeAll() }
            return Array(subscribers.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}

extension Vault {
    /// The events of this vault's own refreshes and revocations, as they happen, for as long as the sequence is iterated (or until
    /// ``shutdown()``). Each call makes a new, independent subscription; an event emitted before it is not in it.
    /// Refreshes by other processes appear in their vaults' events, not here.
    ///
    /// ```swift
    /// for await event in vault.events() {
    ///     if case .needsReauthorization(let client, let provider, _) = event { notifyCustomer(client, provider) }
    /// }
    /// ```
    /// - Parameter limit: events kept for a subscriber that is slow to read; older ones are dropped beyond it.
    public func events(bufferingNewest limit: Int = 1000) -> AsyncStream<VaultEvent> {
        eventHub.subscribe(bufferingNewest: limit)
    }
}
