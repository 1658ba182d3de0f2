import ServiceLifecycle
import TokenVault

/// A ``Vault`` as a swift-service-lifecycle `Service`: it waits for the service group's graceful shutdown (or its
/// cancellation), then shuts the vault down, which lets the refreshes in flight write what their providers
/// answered before the connections close.
///
/// Put it after the services that use the vault in the group: a `ServiceGroup` shuts its services down in reverse
/// order, so the vault goes last.
///
/// ```swift
/// let group = ServiceGroup(
///     services: [VaultService(vault: vault), RefresherService(BackgroundRefresher(vault: vault)), httpServer],
///     gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
public struct VaultService: Service {
    /// The vault, shut down when the service ends.
    public let vault: Vault

    /// A service for `vault`.
    public init(vault: Vault) {
        self.vault = vault
    }

    /// Runs until graceful shutdown or cancellation, then shuts the vault down.
    public func run() async throws {
        try? await gracefulShutdown()
        await vault.shutdown()
    }
}

/// A ``BackgroundRefresher`` as a swift-service-lifecycle `Service`: it runs passes until the group's graceful
/// shutdown (or its cancellation); the pass under way finishes the refreshes it started, then `run()` returns.
public struct RefresherService: Service {
    /// The refresher that runs.
    public let refresher: BackgroundRefresher

    /// A service for `refresher`.
    public init(_ refresher: BackgroundRefresher) {
        self.refresher = refresher
    }

    /// Runs the refresher until graceful shutdown or cancellation.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await refresher.run()
        }
    }
}
