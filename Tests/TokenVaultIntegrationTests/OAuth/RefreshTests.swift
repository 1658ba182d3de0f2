import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

final class RefreshTests: DatabaseTestCase {
    var endpoint: FakeTokenEndpoint!

    override func setUp() async throws {
        endpoint = try FakeTokenEndpoint.start()
    }

    override func tearDown() async throws {
        endpoint.stop()
        try await super.tearDown()
    }

    func testAValidTokenIsServedWithoutCallingTheProvider() async throws {
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(
            sampleTokens(access: "1000.still-good", expiresIn: 3600), client: "a", provider: "zoho_crm")
        let token = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        XCTAssertEqual(token.value.reveal(), "1000.still-good")
        XCTAssertFalse(token.refreshed)
        XCTAssertEqual(endpoint.requestCount, 0)
    }

    /// A token endpoint that answers with a redirect must not get the grant and the client secret re-sent to the
    /// host it names: the vault's transport never follows one, and says so.
    func testARedirectIsNeverFollowed() async throws {
        let elsewhere = try FakeTokenEndpoint.start()
        defer { elsewhere.stop() }
        elsewhere.addRefreshToken("rt-redirect")
        endpoint.addRefreshToken("rt-redirect")
        endpoint.enqueue(.redirect(to: elsewhere.baseURL.appendingPathComponent("oauth/v2/token")))
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-redirect"), client: "a", provider: "zoho_crm")
        let error = await assertVaultError(.providerError) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(error?.message.contains("HTTP 307, a redirect") ?? false, "\(String(describing: error))")
        XCTAssertEqual(elsewhere.requestCount, 0, "nothing was sent to the host the redirect named")
        XCTAssertEqual(endpoint.requestCount, 1, "a redirect is final: not retried")
    }

    func testTheSafetyMarginTriggersARefresh() async throws {
        endpoint.addRefreshToken("rt-margin")
        let fixture = try await makeFixture(refreshMargin: 300, providers: [endpoint.zoho()])
        // 4 minutes left: inside the 5-minute margin, so it is refreshed.
        try await fixture.vault.store(
            TokenSet(
                accessToken: Secret("1000.old"), refreshToken: Secret("rt-margin"),
                expiresAt: Date().addingTimeInterval(240)),
            client: "a", provider: "zoho_crm")
        let refreshed = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        XCTAssertTrue(refreshed.refreshed)
        XCTAssertNotEqual(refreshed.value.reveal(), "1000.old")
        XCTAssertEqual(endpoint.requestCount, 1)
        // 6 minutes left: outside the margin, served as stored.
        try await fixture.vault.store(
            TokenSet(
                accessToken: Secret("1000.fresh"), refreshToken: Secret("rt-margin"),
                expiresAt: Date().addingTimeInterval(360)),
            client: "a", provider: "zoho_crm")
        let served = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        XCTAssertEqual(served.value.reveal(), "1000.fresh")
        XCTAssertEqual(endpoint.requestCount, 1)
    }

    func testRefreshKeepsTheOldRefreshTokenWhenNoneIsReturnedAndRecordsApiDomain() async throws {
        endpoint.addRefreshToken("rt-zoho")
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-zoho"), client: "a", provider: "zoho_crm")
        let token = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        XCTAssertEqual(token.apiDomain, "https://www.zohoapis.eu")
        let stored = try await fixture.vault.fetch(client: "a", provider: "zoho_crm")
        XCTAssertEqual(stored.refreshToken.reveal(), "rt-zoho")
        XCTAssertEqual(stored.accessToken, token.value)
        XCTAssertEqual(stored.metadata["api_domain"], .string("https://www.zohoapis.eu"))
        XCTAssertEqual(stored.expiresAt!.timeIntervalSinceNow, 3600, accuracy: 30)
    }

    /// PostgreSQL cannot store U+0000; refusing the answer would lose its rotated refresh token, so it is removed.
    func testANulInTheProvidersAnswerIsRemovedAndItsTokensKept() async throws {
        let rotating = try FakeTokenEndpoint.start(rotation: .rotating)
        defer { rotating.stop() }
        rotating.addRefreshToken("rt-1")
        rotating.setExtraFields(["scope": "ZohoCRM.modules.ALL\u{0}", "api_domain": "https://www.zoho\u{0}apis.eu"])
        let fixture = try await makeFixture(providers: [rotating.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-1"), client: "a", provider: "zoho_crm")
        let token = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        XCTAssertTrue(token.refreshed)
        let stored = try await fixture.vault.fetch(client: "a", provider: "zoho_crm")
        XCTAssertNotEqual(stored.refreshToken.reveal(), "rt-1", "the rotated refresh token is kept")
        XCTAssertTrue(rotating.isValidRefreshToken(stored.refreshToken.reveal()))
        XCTAssertEqual(stored.scopes, "ZohoCRM.modules.ALL")
        XCTAssertEqual(stored.metadata["api_domain"], .string("https://www.zohoapis.eu"))
    }

    func testARotatedRefreshTokenIsKeptAndNeverReused() async throws {
        let rotating = try FakeTokenEndpoint.start(rotation: .rotating, lifetime: 0)
        defer { rotating.stop() }
        rotating.addRefreshToken("rt-1")
        let fixture = try await makeFixture(providers: [rotating.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-1"), client: "a", provider: "zoho_crm")
        var seen = Set<String>()
        for _ in 0..<3 {
            let token = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
            XCTAssertTrue(token.refreshed)
            seen.insert(token.value.reveal())
        }
        XCTAssertEqual(seen.count, 3)
        XCTAssertEqual(rotating.requestCount, 3)
        XCTAssertEqual(rotating.reuseCount, 0)
        let stored = try await fixture.vault.fetch(client: "a", provider: "zoho_crm")
        XCTAssertTrue(rotating.isValidRefreshToken(stored.refreshToken.reveal()))
        XCTAssertNotEqual(stored.refreshToken.reveal(), "rt-1")
    }

    func testFiftyConcurrentCallersInOneProcessShareOneRefresh() async throws {
        let rotating = try FakeTokenEndpoint.start(rotation: .rotating)
        defer { rotating.stop() }
        rotating.addRefreshToken("rt-crowd")
        rotating.enqueue(.delay(0.2))
        let fixture = try await makeFixture(providers: [rotating.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-crowd"), client: "a", provider: "zoho_crm")
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<50 {
                group.addTask { try await fixture.vault.accessToken(client: "a", provider: "zoho_crm").value.reveal() }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        XCTAssertEqual(Set(tokens).count, 1)
        XCTAssertEqual(rotating.requestCount, 1)
        XCTAssertEqual(rotating.reuseCount, 0)
    }

    func testEnvironmentFallbackIsUsedOnceAndStored() async throws {
        endpoint.addRefreshToken("rt-from-env")
        let fixture = try await makeFixture(providers: [endpoint.zoho(fallback: "rt-from-env")])
        let has = try await fixture.vault.hasToken(client: "new", provider: "zoho_crm")
        XCTAssertTrue(has)
        let first = try await fixture.vault.accessToken(client: "new", provider: "zoho_crm")
        XCTAssertTrue(first.refreshed)
        let second = try await fixture.vault.accessToken(client: "new", provider: "zoho_crm")
        XCTAssertEqual(second.value, first.value)
        XCTAssertEqual(endpoint.requestCount, 1)
        let stored = try await fixture.vault.fetch(client: "new", provider: "zoho_crm")
        XCTAssertEqual(stored.refreshToken.reveal(), "rt-from-env")
    }

    func testNeitherRowNorFallbackSaysHowToStoreTokens() async throws {
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        let has = try await fixture.vault.hasToken(client: "nobody", provider: "zoho_crm")
        XCTAssertFalse(has)
        let error = await assertVaultError(.notFound) {
            try await fixture.vault.accessToken(client: "nobody", provider: "zoho_crm")
        }
        let message = error?.message ?? ""
        XCTAssertTrue(message.contains("no fallback refresh token") && message.contains("store tokens first"), message)
        XCTAssertEqual(endpoint.requestCount, 0)
    }

    func testInvalidCodeWithHTTP200MarksTheRowAndLaterCallsFailFast() async throws {
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        // "rt-revoked" was never issued: Zoho answers {"error":"invalid_code"} with HTTP 200.
        try await fixture.vault.store(expiredTokens(refresh: "rt-revoked"), client: "a", provider: "zoho_crm")
        let error = await assertVaultError(.needsReauthorization) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(error?.message.contains("invalid_code") ?? false)
        XCTAssertTrue(error?.message.contains("until new tokens are stored") ?? false)
        XCTAssertEqual(endpoint.requestCount, 1)
        await assertVaultError(.needsReauthorization) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertEqual(endpoint.requestCount, 1, "a row that needs re-authorization does not call the provider")
        let status = try await fixture.vault.status(client: "a", provider: "zoho_crm")
        XCTAssertTrue(status.needsReauthorization)
        XCTAssertEqual(status.lastRefreshError, "the provider refused the refresh token (invalid_code)")
        _ = try await fixture.vault.fetch(client: "a", provider: "zoho_crm")  // the row is kept
        // Storing new tokens clears the mark.
        endpoint.addRefreshToken("rt-new")
        try await fixture.vault.store(expiredTokens(refresh: "rt-new"), client: "a", provider: "zoho_crm")
        let token = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        XCTAssertTrue(token.refreshed)
        let after = try await fixture.vault.status(client: "a", provider: "zoho_crm")
        XCTAssertFalse(after.needsReauthorization)
        XCTAssertNil(after.lastRefreshError)
    }

    func testA200WithoutAccessTokenIsAFailure() async throws {
        endpoint.addRefreshToken("rt-x")
        endpoint.enqueue(.errorWith200("some_new_error"))
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-x"), client: "a", provider: "zoho_crm")
        let error = await assertVaultError(.providerError) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(error?.message.contains("some_new_error") ?? false, "\(String(describing: error))")
    }

    func testTransientFailuresAreRetriedWithBackoff() async throws {
        endpoint.addRefreshToken("rt-flaky")
        endpoint.enqueue(.status(503), .accessDenied)
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-flaky"), client: "a", provider: "zoho_crm")
        let token = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        XCTAssertTrue(token.refreshed)
        XCTAssertEqual(endpoint.requestCount, 3)
    }

    func testPersistentFailureGivesAClearErrorAfterThreeAttempts() async throws {
        endpoint.addRefreshToken("rt-down")
        endpoint.enqueue(.status(503), .status(502), .status(500))
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-down"), client: "a", provider: "zoho_crm")
        let error = await assertVaultError(.providerError) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(error?.message.contains("HTTP 500") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("Tried 3 times") ?? false, "\(String(describing: error))")
        XCTAssertEqual(endpoint.requestCount, 3)
        let status = try await fixture.vault.status(client: "a", provider: "zoho_crm")
        XCTAssertFalse(status.needsReauthorization, "a transient failure does not need the user")
        XCTAssertNotNil(status.lastRefreshError)
    }

    func testASlowEndpointTimesOutAndIsRetried() async throws {
        endpoint.addRefreshToken("rt-slow")
        endpoint.enqueue(.delay(1.5))
        let policy = RefreshPolicy(requestTimeout: 0.5, attempts: 3, initialBackoff: 0.01, maximumBackoff: 0.05)
        let fixture = try await makeFixture(providers: [endpoint.zoho()], refreshPolicy: policy)
        try await fixture.vault.store(expiredTokens(refresh: "rt-slow"), client: "a", provider: "zoho_crm")
        let token = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        XCTAssertTrue(token.refreshed)
        XCTAssertEqual(endpoint.startedCount, 2, "the slow request timed out and the second attempt succeeded")
    }

    func testTheRateCapIsNeverExceeded() async throws {
        let shortLived = try FakeTokenEndpoint.start(lifetime: 0)
        defer { shortLived.stop() }
        shortLived.addRefreshToken("rt-busy")
        let fixture = try await makeFixture(providers: [shortLived.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-busy"), client: "a", provider: "zoho_crm")
        for _ in 0..<10 {
            _ = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertEqual(shortLived.requestCount, 10)
        let error = await assertVaultError(.rateLimited) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(error?.message.contains("limit of 10 refreshes per refresh token per 10 minutes") ?? false)
        XCTAssertTrue(error?.message.contains("did not call the provider") ?? false)
        // A service sets Retry-After from the field, without parsing the message.
        let wait = try XCTUnwrap(error?.retryAfter)
        XCTAssertTrue(wait > .zero && wait <= .seconds(600), "\(wait)")
        XCTAssertTrue(error?.message.contains("possible in \(wait.components.seconds) s") ?? false)
        XCTAssertEqual(shortLived.requestCount, 10)
    }

    func testRetriesCountTowardsTheRateCap() async throws {
        endpoint.addRefreshToken("rt-cap")
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-cap"), client: "a", provider: "zoho_crm")
        _ = try await fixture.sql(
            "UPDATE oauth_tokens SET refresh_history = array_fill(now(), ARRAY[9])")
        endpoint.enqueue(.status(503), .status(503))
        let error = await assertVaultError(.providerError) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertEqual(endpoint.requestCount, 1, "only one request was left in the budget")
        XCTAssertTrue(error?.message.contains("rate limit allowed only 1") ?? false, "\(String(describing: error))")
        await assertVaultError(.rateLimited) { try await fixture.vault.accessToken(client: "a", provider: "zoho_crm") }
    }

    func testExpiresInSecWins() async throws {
        endpoint.addRefreshToken("rt-ms")
        endpoint.setZohoMillisecondsExpiry(true)
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-ms"), client: "a", provider: "zoho_crm")
        let token = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        XCTAssertEqual(token.expiresAt!.timeIntervalSinceNow, 3600, accuracy: 30)
    }

    func testExchangeStoresTheTokensFromACode() async throws {
        endpoint.addAuthorizationCode("1000.grant-code")
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        let token = try await fixture.vault.exchange(code: Secret("1000.grant-code"), client: "a", provider: "zoho_crm")
        let stored = try await fixture.vault.fetch(client: "a", provider: "zoho_crm")
        XCTAssertEqual(stored.accessToken, token.value)
        XCTAssertTrue(endpoint.isValidRefreshToken(stored.refreshToken.reveal()))
        let error = await assertVaultError(.needsReauthorization) {
            try await fixture.vault.exchange(code: Secret("1000.grant-code"), client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(error?.message.contains("single-use") ?? false)
    }

    func testHTTPBasicClientAuthenticationForAGenericProvider() async throws {
        endpoint.addRefreshToken("rt-basic")
        let provider = OAuthProvider(
            name: "generic", tokenURL: endpoint.tokenURL, clientID: endpoint.clientID,
            clientSecret: Secret(endpoint.clientSecret), clientAuthentication: .httpBasic)
        let fixture = try await makeFixture(providers: [provider])
        try await fixture.vault.store(expiredTokens(refresh: "rt-basic"), client: "a", provider: "generic")
        let token = try await fixture.vault.accessToken(client: "a", provider: "generic")
        XCTAssertTrue(token.refreshed)
    }

    func testWrongClientSecretIsAConfigurationError() async throws {
        endpoint.addRefreshToken("rt-a")
        let wrong = OAuthProvider.zoho(
            "zoho_crm", clientID: endpoint.clientID, clientSecret: Secret("wrong"), accountsURL: endpoint.baseURL)
        let fixture = try await makeFixture(providers: [wrong])
        try await fixture.vault.store(expiredTokens(refresh: "rt-a"), client: "a", provider: "zoho_crm")
        let error = await assertVaultError(.providerConfiguration) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertFalse(error?.message.contains("wrong") ?? true)
        let status = try await fixture.vault.status(client: "a", provider: "zoho_crm")
        XCTAssertFalse(status.needsReauthorization)
    }

    func testUnconfiguredProviderSaysWhatToSet() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(expiredTokens(refresh: "rt"), client: "a", provider: "zoho_crm")
        let error = await assertVaultError(.unknownProvider) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(error?.message.contains("register an OAuthProvider named 'zoho_crm'") ?? false)
    }

    func testAnUnreachableEndpointIsTransient() async throws {
        let dead = OAuthProvider.zoho(
            "zoho_crm", clientID: "x", clientSecret: Secret("y"), accountsURL: URL(string: "http://127.0.0.1:9")!)
        let fixture = try await makeFixture(providers: [dead])
        try await fixture.vault.store(expiredTokens(refresh: "rt"), client: "a", provider: "zoho_crm")
        let error = await assertVaultError(.providerError) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(error?.message.contains("could not reach") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("Tried 3 times") ?? false, "\(String(describing: error))")
    }
}
