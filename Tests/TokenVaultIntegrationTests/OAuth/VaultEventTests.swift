import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// `Vault.events()`: what a service subscribes to, to notify a customer or page someone.
final class VaultEventTests: DatabaseTestCase {
    func testRefreshesFailuresAndRefusalsAreEventsWithoutTokens() async throws {
        let endpoint = try FakeTokenEndpoint.start()
        defer { endpoint.stop() }
        endpoint.addRefreshToken("rt-events")
        let policy = RefreshPolicy(
            requestTimeout: 2, attempts: 1, initialBackoff: 0.01, maximumBackoff: 0.05, waitTimeout: 20)
        let fixture = try await makeFixture(providers: [endpoint.zoho()], refreshPolicy: policy)
        let vault = try fixture.reopen()
        let events = vault.events()
        let collected = Task { await events.reduce(into: [VaultEvent]()) { $0.append($1) } }

        try await vault.store(expiredTokens(refresh: "rt-events"), client: "ok", provider: "zoho_crm")
        _ = try await vault.accessToken(client: "ok", provider: "zoho_crm")
        endpoint.enqueue(.status(503))
        try await vault.store(expiredTokens(refresh: "rt-events"), client: "down", provider: "zoho_crm")
        await assertVaultError(.providerError) { try await vault.accessToken(client: "down", provider: "zoho_crm") }
        try await vault.store(expiredTokens(refresh: "rt-revoked"), client: "gone", provider: "zoho_crm")
        await assertVaultError(.needsReauthorization) {
            try await vault.accessToken(client: "gone", provider: "zoho_crm")
        }
        await vault.shutdown()  // ends the sequence

        let seen = await collected.value
        XCTAssertEqual(seen.count, 3, "\(seen)")
        XCTAssertEqual(seen.first, .refreshed(client: "ok", provider: "zoho_crm", keyID: fixture.keyring.current.id))
        guard case .refreshFailed(let client, _, let code, _) = seen[1] else { return XCTFail("\(seen[1])") }
        XCTAssertEqual(client, "down")
        XCTAssertEqual(code, .providerError)
        guard case .needsReauthorization(let gone, let provider, let reason) = seen[2] else {
            return XCTFail("\(seen[2])")
        }
        XCTAssertEqual([gone, provider], ["gone", "zoho_crm"])
        XCTAssertTrue(reason.contains("invalid_code"), reason)
        XCTAssertFalse("\(seen)".contains("rt-"), "no refresh token in an event")
        XCTAssertFalse("\(seen)".contains("1000.at-"), "no access token in an event")
    }
}
