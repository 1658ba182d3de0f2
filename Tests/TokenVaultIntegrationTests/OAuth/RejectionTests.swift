import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// `accessToken(client:provider:replacing:)`: an API answered 401 to a token the vault handed out.
final class RejectionTests: DatabaseTestCase {
    var endpoint: FakeTokenEndpoint!

    override func setUp() async throws {
        endpoint = try FakeTokenEndpoint.start(rotation: .rotating)
    }

    override func tearDown() async throws {
        endpoint.stop()
        try await super.tearDown()
    }

    /// 50 callers in each of two vaults (two processes' worth of pools and single flights) report the same
    /// still-valid token at once: one refresh, and every caller gets its new token.
    func testAHundredCallersReportingTheSameRejectedTokenMakeOneRefresh() async throws {
        endpoint.addRefreshToken("rt-401")
        endpoint.enqueue(.delay(0.3))  // a slow provider widens the race
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(
            sampleTokens(access: "1000.revoked-upstream", refresh: "rt-401"), client: "a", provider: "zoho_crm")
        let other = try fixture.reopen()
        let rejected = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm").value
        XCTAssertEqual(rejected.reveal(), "1000.revoked-upstream")

        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<100 {
                let vault = index % 2 == 0 ? fixture.vault : other
                group.addTask {
                    try await vault.accessToken(client: "a", provider: "zoho_crm", replacing: rejected).value.reveal()
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        await other.shutdown()
        XCTAssertEqual(tokens.count, 100)
        XCTAssertEqual(Set(tokens).count, 1, "every caller got the same new token")
        XCTAssertNotEqual(tokens.first, "1000.revoked-upstream")
        XCTAssertEqual(endpoint.requestCount, 1, "one refresh for a hundred reports")
        XCTAssertEqual(endpoint.reuseCount, 0)
        let stored = try await fixture.vault.fetch(client: "a", provider: "zoho_crm")
        XCTAssertEqual(stored.accessToken?.reveal(), tokens.first)
        XCTAssertTrue(endpoint.isValidRefreshToken(stored.refreshToken.reveal()), "the rotated refresh token kept")
    }

    /// A report that comes after the token was replaced (by another caller's report, a refresh or a store) gets
    /// the current token and never refreshes it again.
    func testARejectedTokenAlreadyReplacedIsNotRefreshedAgain() async throws {
        endpoint.addRefreshToken("rt-late")
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(
            sampleTokens(access: "1000.first", refresh: "rt-late"), client: "a", provider: "zoho_crm")
        let first = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm").value
        let second = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm", replacing: first)
        XCTAssertTrue(second.refreshed)
        XCTAssertEqual(endpoint.requestCount, 1)
        // A late report of the first token: the second is served, no refresh.
        let late = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm", replacing: first)
        XCTAssertEqual(late.value, second.value)
        XCTAssertFalse(late.refreshed)
        XCTAssertEqual(endpoint.requestCount, 1, "a replaced token is never refreshed again")
        // A token the vault never stored here (another account's, say) refreshes nothing either.
        let foreign = try await fixture.vault.accessToken(
            client: "a", provider: "zoho_crm", replacing: Secret("1000.someone-elses"))
        XCTAssertEqual(foreign.value, second.value)
        XCTAssertEqual(endpoint.requestCount, 1)
    }

    /// No row and no fallback: the report says how to store tokens, as `accessToken` does.
    func testAReportWithoutARowSaysHowToStoreTokens() async throws {
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        await assertVaultError(.notFound) {
            try await fixture.vault.accessToken(client: "nobody", provider: "zoho_crm", replacing: Secret("1000.x"))
        }
        XCTAssertEqual(endpoint.requestCount, 0)
    }
}
