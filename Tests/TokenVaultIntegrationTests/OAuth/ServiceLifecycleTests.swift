import Foundation
import Logging
import ServiceLifecycle
import TokenVault
import TokenVaultServiceLifecycle
import TokenVaultTesting
import XCTest

/// `VaultService` and `RefresherService` in a swift-service-lifecycle `ServiceGroup`.
final class ServiceLifecycleTests: DatabaseTestCase {
    /// A group with the vault and its refresher keeps rows fresh; graceful shutdown while a refresh waits for the
    /// provider lets it write its answer, then shuts the vault down and ends the group.
    func testGracefulShutdownDrainsTheRefresherThenClosesTheVault() async throws {
        let endpoint = try FakeTokenEndpoint.start(rotation: .rotating)
        defer { endpoint.stop() }
        endpoint.addRefreshToken("rt-service")
        endpoint.enqueue(.delay(1))
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-service"), client: "s", provider: "zoho_crm")
        let vault = try fixture.reopen()
        let group = ServiceGroup(
            services: [VaultService(vault: vault), RefresherService(BackgroundRefresher(vault: vault, interval: 0.1))],
            gracefulShutdownSignals: [], cancellationSignals: [], logger: Logger(label: "test"))
        let running = Task { try await group.run() }

        let deadline = Date().addingTimeInterval(20)
        while endpoint.startedCount == 0 && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertEqual(endpoint.startedCount, 1, "the refresher reached the provider")
        await group.triggerGracefulShutdown()
        try await running.value

        let stored = try await fixture.vault.fetch(client: "s", provider: "zoho_crm")
        XCTAssertTrue(stored.isAccessTokenValid(margin: 300), "the refresh under way was written")
        XCTAssertTrue(endpoint.isValidRefreshToken(stored.refreshToken.reveal()), "its rotated refresh token kept")
        await assertVaultError(.connectionFailed) { try await vault.ping() }
    }
}
