import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// The refresh lease: nothing is held while the provider is called, and every way a lease can end is handled.
/// (Several OS processes: `MultiProcessRefreshTests`.)
final class RefreshLeaseTests: DatabaseTestCase {
    var endpoint: FakeTokenEndpoint!

    override func setUp() async throws {
        endpoint = try FakeTokenEndpoint.start()
    }

    override func tearDown() async throws {
        endpoint.stop()
        try await super.tearDown()
    }

    func waitUntilTheProviderIsCalled(_ count: Int = 1) async {
        let deadline = Date().addingTimeInterval(20)
        while endpoint.startedCount < count && Date() < deadline { try? await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertEqual(endpoint.startedCount, count, "the refresh reached the provider")
    }

    /// With a pool of one connection, a refresh waiting 1.5 s for its provider leaves the connection free:
    /// another account's valid token is served at once, and no session sits in a transaction meanwhile.
    func testASlowRefreshHoldsNoConnectionAndNoTransaction() async throws {
        endpoint.addRefreshToken("rt-slow")
        endpoint.enqueue(.delay(1.5))
        let fixture = try await makeFixture(maximumConnections: 1, providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-slow"), client: "slow", provider: "zoho_crm")
        try await fixture.vault.store(sampleTokens(access: "1000.other"), client: "other", provider: "zoho_crm")

        let vault = fixture.vault
        let refresh = Task { try await vault.accessToken(client: "slow", provider: "zoho_crm") }
        await waitUntilTheProviderIsCalled()
        let started = Date()
        let other = try await vault.accessToken(client: "other", provider: "zoho_crm")
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(other.value.reveal(), "1000.other")
        XCTAssertLessThan(elapsed, 0.5, "the other account's read did not wait for the provider")
        let inTransaction = try await fixture.sql(
            """
            SELECT count(*) FROM pg_stat_activity
            WHERE application_name = 'token-vault' AND state LIKE 'idle in transaction%'
            """)
        XCTAssertEqual(inTransaction.first?.first, "0", "no transaction is open while the provider is called")
        let lease = try await fixture.sql("SELECT client_id FROM token_vault_refresh_leases")
        XCTAssertEqual(lease.first?.first, "slow", "the refresh holds a lease instead")

        let refreshed = try await refresh.value
        XCTAssertTrue(refreshed.refreshed)
        let leases = try await fixture.sql("SELECT count(*) FROM token_vault_refresh_leases")
        XCTAssertEqual(leases.first?.first, "0", "the lease was released with the write")
    }

    /// A key rotation re-seals the row while its refresh waits for the provider: the compare-and-set loses, sees
    /// the same refresh token under the new key, and writes the refreshed tokens over the new version. The
    /// rotated refresh token is kept.
    func testAKeyRotationDuringARefreshDoesNotLoseItsTokens() async throws {
        let rotatingEndpoint = try FakeTokenEndpoint.start(rotation: .rotating)
        defer { rotatingEndpoint.stop() }
        rotatingEndpoint.addRefreshToken("rt-rotate")
        rotatingEndpoint.enqueue(.delay(1))
        let old = VaultKey.generate()
        let new = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: old), providers: [rotatingEndpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-rotate"), client: "a", provider: "zoho_crm")
        let refreshing = try fixture.reopen(keyring: try Keyring(current: new, previous: [old]))
        let rotating = try fixture.reopen(keyring: try Keyring(current: new, previous: [old]))
        defer { Task { await refreshing.shutdown() } }
        defer { Task { await rotating.shutdown() } }

        let refresh = Task { try await refreshing.accessToken(client: "a", provider: "zoho_crm") }
        let deadline = Date().addingTimeInterval(20)
        while rotatingEndpoint.startedCount == 0 && Date() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        let report = try await rotating.rotateKeys()
        XCTAssertEqual(report.resealed, 1, "the row was re-sealed while its refresh was at the provider")
        let token = try await refresh.value
        XCTAssertTrue(token.refreshed)

        let stored = try await rotating.fetch(client: "a", provider: "zoho_crm")
        XCTAssertEqual(stored.accessToken, token.value, "the refreshed access token was stored")
        XCTAssertTrue(
            rotatingEndpoint.isValidRefreshToken(stored.refreshToken.reveal()), "the rotated refresh token was kept")
        XCTAssertEqual(rotatingEndpoint.requestCount, 1)
    }

    /// A caller in another process (another vault on the database) waits for the holder; the holder's refresh
    /// fails; the waiter reports that failure instead of calling the provider a second time.
    func testAWaiterReportsTheHoldersFailureWithoutCallingAgain() async throws {
        endpoint.addRefreshToken("rt-fail")
        endpoint.enqueue(.delay(1), .status(500))
        let policy = RefreshPolicy(
            requestTimeout: 3, attempts: 1, initialBackoff: 0.01, maximumBackoff: 0.05, waitTimeout: 20)
        let fixture = try await makeFixture(providers: [endpoint.zoho()], refreshPolicy: policy)
        try await fixture.vault.store(expiredTokens(refresh: "rt-fail"), client: "a", provider: "zoho_crm")
        let other = try fixture.reopen()
        defer { Task { await other.shutdown() } }

        let vault = fixture.vault
        let holder = Task { try await vault.accessToken(client: "a", provider: "zoho_crm") }
        await waitUntilTheProviderIsCalled()
        let waiterError = await assertVaultError(.providerError) {
            try await other.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(
            waiterError?.message.contains("another process refreshed") ?? false, "\(String(describing: waiterError))")
        await assertVaultError(.providerError) { try await holder.value }
        XCTAssertEqual(endpoint.startedCount, 1, "the waiter did not call the provider again")
    }

    /// A lease whose holder died (expired) is taken over at once; a live lease of a holder that never finishes
    /// makes a caller give up after `waitTimeout`, with an error that says so.
    func testAnExpiredLeaseIsTakenOverAndALiveOneTimesOut() async throws {
        endpoint.addRefreshToken("rt-lease")
        let policy = RefreshPolicy(
            requestTimeout: 2, attempts: 1, initialBackoff: 0.01, maximumBackoff: 0.05, waitTimeout: 1)
        let fixture = try await makeFixture(providers: [endpoint.zoho()], refreshPolicy: policy)
        try await fixture.vault.store(expiredTokens(refresh: "rt-lease"), client: "dead", provider: "zoho_crm")
        try await fixture.vault.store(expiredTokens(refresh: "rt-lease"), client: "busy", provider: "zoho_crm")
        _ = try await fixture.sql(
            """
            INSERT INTO token_vault_refresh_leases (client_id, provider, holder, expires_at) VALUES
                ('dead', 'zoho_crm', gen_random_uuid(), now() - interval '1 second'),
                ('busy', 'zoho_crm', gen_random_uuid(), now() + interval '1 hour')
            RETURNING 1
            """)

        let taken = try await fixture.vault.accessToken(client: "dead", provider: "zoho_crm")
        XCTAssertTrue(taken.refreshed, "the expired lease was taken over")

        let started = Date()
        let error = await assertVaultError(.timedOut) {
            try await fixture.vault.accessToken(client: "busy", provider: "zoho_crm")
        }
        XCTAssertEqual(Date().timeIntervalSince(started), 1, accuracy: 0.8)
        XCTAssertTrue(
            error?.message.contains("another process has been refreshing") ?? false, "\(String(describing: error))")
        XCTAssertEqual(endpoint.startedCount, 1, "only the taken-over refresh called the provider")
    }
}
