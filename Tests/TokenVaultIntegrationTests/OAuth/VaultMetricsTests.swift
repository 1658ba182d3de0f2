import Foundation
import MetricsTestKit
import TokenVault
import TokenVaultTesting
import XCTest

/// The vault's metrics through swift-metrics' test backend: names and labels as documented, no client id and no
/// token in any label.
final class VaultMetricsTests: DatabaseTestCase {
    func testRefreshesWaitsOpenFailuresAndRowsPerKeyAreRecorded() async throws {
        let endpoint = try FakeTokenEndpoint.start()
        defer { endpoint.stop() }
        endpoint.addRefreshToken("rt-metrics")
        let metrics = TestMetrics()
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        var configuration = fixture.vault.configuration
        configuration.metricsFactory = metrics
        configuration.maximumConnections = 1
        let vault = try Vault(configuration: configuration)

        try await vault.store(expiredTokens(refresh: "rt-metrics"), client: "m", provider: "zoho_crm")
        _ = try await vault.accessToken(client: "m", provider: "zoho_crm")
        try await vault.store(expiredTokens(refresh: "rt-unknown"), client: "r", provider: "zoho_crm")
        _ = try? await vault.accessToken(client: "r", provider: "zoho_crm")
        // Calls queue behind one connection: pool waits.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { _ = try await vault.fetch(client: "m", provider: "zoho_crm") } }
            try await group.waitForAll()
        }
        _ = try await fixture.sql(
            "UPDATE oauth_tokens SET access_token_ciphertext = refresh_token_ciphertext, "
                + "access_token_nonce = refresh_token_nonce WHERE client_id = 'm' RETURNING 1")
        _ = try await vault.verify()
        await vault.shutdown()

        XCTAssertEqual(
            metrics.counterTotal(
                label: "token_vault_refreshes_total", dimensions: [("provider", "zoho_crm"), ("outcome", "refreshed")]),
            1)
        XCTAssertEqual(
            metrics.counterTotal(
                label: "token_vault_refreshes_total",
                dimensions: [("provider", "zoho_crm"), ("outcome", "needs_reauthorization")]), 1)
        XCTAssertGreaterThan(metrics.counterTotal(label: "token_vault_pool_waits_total"), 0)
        XCTAssertEqual(
            metrics.counterTotal(
                label: "token_vault_open_failures_total",
                dimensions: [("field", "access_token"), ("reason", "authenticationFailed")]), 1)
        let rows = try metrics.expectGauge("token_vault_rows", [("key_id", fixture.keyring.current.id.rawValue)])
        XCTAssertEqual(rows.lastValue, 2)
        XCTAssertFalse(metrics.timers.isEmpty, "refresh duration recorded")
        let labels = (metrics.counters.flatMap(\.dimensions) + metrics.timers.flatMap(\.dimensions)).map { "\($0)" }
        XCTAssertFalse(labels.contains { $0.contains("\"m\"") || $0.contains("\"r\"") }, "no client id: \(labels)")
        XCTAssertFalse(labels.contains { $0.contains("rt-") || $0.contains("1000.") }, "no token: \(labels)")
    }
}
