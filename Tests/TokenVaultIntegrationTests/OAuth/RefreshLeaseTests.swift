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

    /// For the tests whose provider takes 3 s to answer (so that another caller or a rotation acts meanwhile, on a
    /// loaded machine too): a request timeout above that.
    static let patient = RefreshPolicy(
        requestTimeout: 6, attempts: 3, initialBackoff: 0.01, maximumBackoff: 0.05, waitTimeout: 20)

    func waitUntilTheProviderIsCalled(_ count: Int = 1) async {
        let deadline = Date().addingTimeInterval(20)
        while endpoint.startedCount < count && Date() < deadline { try? await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertEqual(endpoint.startedCount, count, "the refresh reached the provider")
    }

    /// With a pool of one connection, a refresh waiting 3 s for its provider leaves the connection free:
    /// another account's valid token is served at once, and no session sits in a transaction meanwhile.
    func testASlowRefreshHoldsNoConnectionAndNoTransaction() async throws {
        endpoint.addRefreshToken("rt-slow")
        endpoint.enqueue(.delay(3))
        let fixture = try await makeFixture(
            maximumConnections: 1, providers: [endpoint.zoho()], refreshPolicy: Self.patient)
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
        // Long enough for the rotation to start and finish while the refresh waits, on a loaded machine too.
        rotatingEndpoint.enqueue(.delay(3))
        let old = VaultKey.generate()
        let new = VaultKey.generate()
        let fixture = try await makeFixture(
            keyring: try Keyring(current: old), providers: [rotatingEndpoint.zoho()], refreshPolicy: Self.patient)
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
        // Long enough for the waiter to start waiting before the holder fails, on a loaded machine too.
        endpoint.enqueue(.delay(3), .status(500))
        let policy = RefreshPolicy(
            requestTimeout: 6, attempts: 1, initialBackoff: 0.01, maximumBackoff: 0.05, waitTimeout: 20)
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

    // Found by review: each of these failed before the lease was reworked.

    func waitFor(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(20)
        while try await !condition() {
            guard Date() < deadline else { return XCTFail("timed out waiting for \(what)") }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    /// Slows only the refresh's write (it sets last_refreshed_at), to widen the gap around it.
    func slowRefreshWrites(_ fixture: VaultFixture) async throws {
        try await AdminSQL.execute(
            """
            CREATE FUNCTION slow_refresh_write() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.last_refreshed_at IS DISTINCT FROM OLD.last_refreshed_at THEN PERFORM pg_sleep(2); END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER slow_refresh BEFORE UPDATE ON oauth_tokens
            FOR EACH ROW EXECUTE FUNCTION slow_refresh_write();
            """, url: fixture.database.url)
    }

    /// A key rotation makes the refresh's first compare-and-set lose; the lease stays held while it writes again,
    /// so a caller in another process waits for it instead of calling the provider with the same refresh token.
    /// With a provider that rotates refresh tokens, that second call would have revoked the account's tokens.
    func testALostCompareAndSetKeepsTheLeaseUntilTheWrite() async throws {
        for rotation in [FakeTokenEndpoint.Rotation.none, .rotating] {
            let provider = try FakeTokenEndpoint.start(rotation: rotation)
            defer { provider.stop() }
            provider.addRefreshToken("rt-cas")
            // Long enough for the rotation to run while the refresh waits, on a loaded machine too.
            provider.enqueue(.delay(3))
            let old = VaultKey.generate()
            let new = VaultKey.generate()
            let fixture = try await makeFixture(
                keyring: try Keyring(current: old), providers: [provider.zoho()], refreshPolicy: Self.patient)
            try await fixture.vault.store(expiredTokens(refresh: "rt-cas"), client: "a", provider: "zoho_crm")
            try await slowRefreshWrites(fixture)
            let keys = try Keyring(current: new, previous: [old])
            let holder = try fixture.reopen(keyring: keys)
            let rotating = try fixture.reopen(keyring: keys)
            let otherProcess = try fixture.reopen(keyring: keys)
            let refresh = Task { try await holder.accessToken(client: "a", provider: "zoho_crm") }
            try await waitFor("the provider call") { provider.startedCount == 1 }
            let report = try await rotating.rotateKeys()
            XCTAssertEqual(report.resealed, 1)
            let waiter = try await otherProcess.accessToken(client: "a", provider: "zoho_crm")
            let token = try await refresh.value
            XCTAssertEqual(waiter.value, token.value, "\(rotation): the other process got the holder's token")
            XCTAssertEqual(provider.startedCount, 1, "\(rotation): exactly one provider call")
            XCTAssertEqual(provider.reuseCount, 0, "\(rotation): no refresh token was reused")
            let stored = try await rotating.fetch(client: "a", provider: "zoho_crm")
            XCTAssertTrue(provider.isValidRefreshToken(stored.refreshToken.reveal()), "\(rotation): it still works")
            for vault in [holder, rotating, otherProcess] { await vault.shutdown() }
        }
    }

    /// Every request to the provider is counted before it is sent: a process killed during the third request of a
    /// refresh has used up three of the provider's rate limit.
    func testEveryRequestIsCountedBeforeItIsSent() async throws {
        endpoint.addRefreshToken("rt-retry")
        endpoint.enqueue(.status(500), .status(500), .delay(2))
        let policy = RefreshPolicy(
            requestTimeout: 5, attempts: 3, initialBackoff: 0.01, maximumBackoff: 0.05, waitTimeout: 20)
        let fixture = try await makeFixture(providers: [endpoint.zoho()], refreshPolicy: policy)
        try await fixture.vault.store(expiredTokens(refresh: "rt-retry"), client: "a", provider: "zoho_crm")
        let vault = fixture.vault
        let refresh = Task { try await vault.accessToken(client: "a", provider: "zoho_crm") }
        try await waitFor("the third request") { self.endpoint.startedCount == 3 }
        let counted = try await fixture.sql("SELECT cardinality(refresh_history) FROM oauth_tokens")
        _ = try? await refresh.value
        XCTAssertEqual(counted.first?.first, "3", "every request is counted before it is sent")
    }

    /// A fallback refresh token with no row yet (and a provider that keeps refusing it) still has Zoho's cap.
    func testAFallbackRefreshTokenKeepsTheRateCap() async throws {
        let fixture = try await makeFixture(providers: [endpoint.zoho(fallback: "rt-not-known")])
        for _ in 0..<12 { _ = try? await fixture.vault.accessToken(client: "fresh", provider: "zoho_crm") }
        XCTAssertEqual(endpoint.requestCount, 10, "Zoho's 10 per 10 minutes")
        let error = await assertVaultError(.rateLimited) {
            try await fixture.vault.accessToken(client: "other", provider: "zoho_crm")
        }
        XCTAssertNotNil(error?.retryAfter, "the fallback token is shared by every client without a row")
    }

    /// A refusal while a key rotation re-seals the row is still marked, so the refused token is not sent again.
    func testARefusalDuringAKeyRotationIsStillMarked() async throws {
        endpoint.enqueue(.delay(1))
        let old = VaultKey.generate()
        let new = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: old), providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-refused"), client: "a", provider: "zoho_crm")
        let keys = try Keyring(current: new, previous: [old])
        let refreshing = try fixture.reopen(keyring: keys)
        let rotating = try fixture.reopen(keyring: keys)
        let refresh = Task { try await refreshing.accessToken(client: "a", provider: "zoho_crm") }
        try await waitFor("the provider call") { self.endpoint.startedCount == 1 }
        _ = try await rotating.rotateKeys()
        await assertVaultError(.needsReauthorization) { try await refresh.value }
        let marked = try await fixture.sql("SELECT needs_reauthorization FROM oauth_tokens")
        XCTAssertEqual(marked.first?.first, "t", "the refused row is marked")
        _ = try? await refreshing.accessToken(client: "a", provider: "zoho_crm")
        XCTAssertEqual(endpoint.requestCount, 1, "the refused token is not sent again")
        for vault in [refreshing, rotating] { await vault.shutdown() }
    }

    /// `shutdown()` while the provider answers: the refresh writes the answer first, so that a rotated refresh token
    /// is kept.
    func testShutdownDuringARefreshKeepsTheRotatedRefreshToken() async throws {
        let provider = try FakeTokenEndpoint.start(rotation: .rotating)
        defer { provider.stop() }
        provider.addRefreshToken("rt-shutdown")
        provider.enqueue(.delay(1))
        let fixture = try await makeFixture(providers: [provider.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-shutdown"), client: "a", provider: "zoho_crm")
        let service = try fixture.reopen()
        let refresh = Task { try await service.accessToken(client: "a", provider: "zoho_crm") }
        try await waitFor("the provider call") { provider.startedCount == 1 }
        await service.shutdown()
        let token = try await refresh.value
        let stored = try await fixture.vault.fetch(client: "a", provider: "zoho_crm")
        XCTAssertEqual(stored.accessToken, token.value)
        XCTAssertTrue(provider.isValidRefreshToken(stored.refreshToken.reveal()), "the stored refresh token works")
    }

    /// The holder's lease would expire while the database keeps it waiting before its request: it renews the lease
    /// in the statement that counts the request, so the other process cannot take the refresh over meanwhile, and
    /// the provider is called once.
    func testASlowDatabaseBeforeTheRequestDoesNotLetASecondCallerIn() async throws {
        endpoint.addRefreshToken("rt-slowdb")
        let policy = RefreshPolicy(  // lease: 1 + 10 = 11 s
            requestTimeout: 1, attempts: 1, initialBackoff: 0.01, maximumBackoff: 0.05, waitTimeout: 30)
        let fixture = try await makeFixture(providers: [endpoint.zoho()], refreshPolicy: policy)
        try await fixture.vault.store(expiredTokens(refresh: "rt-slowdb"), client: "a", provider: "zoho_crm")
        let other = try fixture.reopen()
        let blocker = Task {
            try await fixture.sql(
                """
                WITH l AS MATERIALIZED (SELECT 1 FROM oauth_tokens WHERE client_id = 'a' FOR UPDATE)
                SELECT pg_sleep(12) FROM l
                """)
        }
        try await Task.sleep(nanoseconds: 300_000_000)
        let vault = fixture.vault
        let first = Task { try await vault.accessToken(client: "a", provider: "zoho_crm") }
        try await waitFor("the lease") {
            try await fixture.sql("SELECT count(*) FROM token_vault_refresh_leases").first?.first == "1"
        }
        try await Task.sleep(nanoseconds: 11_300_000_000)
        let second = Task { try await other.accessToken(client: "a", provider: "zoho_crm") }
        _ = try await blocker.value
        let tokens = [try? await first.value, try? await second.value].compactMap { $0?.value }
        XCTAssertEqual(endpoint.startedCount, 1, "exactly one provider call")
        XCTAssertEqual(tokens.count, 2, "both callers got the token")
        await other.shutdown()
    }
}
