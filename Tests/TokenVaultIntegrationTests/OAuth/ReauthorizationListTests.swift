import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// `Vault.list(filter: .needsReauthorization)`: rows marked by a refresh the provider really refused, read a page
/// at a time with the filter in SQL.
final class ReauthorizationListTests: DatabaseTestCase {
    var endpoint: FakeTokenEndpoint!

    override func setUp() async throws {
        endpoint = try FakeTokenEndpoint.start()
    }

    override func tearDown() async throws {
        endpoint.stop()
        try await super.tearDown()
    }

    /// Seven rows in key order c0…c6; the refresh tokens of c1, c2, c4, c5 and c6 were never issued, so Zoho
    /// refuses them (`invalid_code` with HTTP 200) and the vault marks those rows.
    func testRowsARefusedRefreshMarkedAreListedAcrossPages() async throws {
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        let refused = ["c1", "c2", "c4", "c5", "c6"]
        for index in 0..<7 {
            let client = "c\(index)"
            let tokens = refused.contains(client) ? expiredTokens(refresh: "rt-never-issued-\(index)") : sampleTokens()
            try await fixture.vault.store(tokens, client: client, provider: "zoho_crm")
        }
        let before = Date()
        for client in refused {
            await assertVaultError(.needsReauthorization) {
                try await fixture.vault.accessToken(client: client, provider: "zoho_crm")
            }
        }
        let after = Date()
        XCTAssertEqual(endpoint.requestCount, refused.count)

        var pages: [[TokenSummary]] = []
        try await fixture.vault.list(filter: .needsReauthorization, pageSize: 2) { pages.append($0) }
        XCTAssertEqual(pages.map(\.count), [2, 2, 1], "full pages of selected rows only; short only at the end")
        let listed = pages.flatMap { $0 }
        XCTAssertEqual(listed.map(\.clientID), refused)
        for summary in listed {
            XCTAssertTrue(summary.needsReauthorization)
            XCTAssertEqual(summary.lastRefreshError, "the provider refused the refresh token (invalid_code)")
            let failedAt = try XCTUnwrap(summary.lastRefreshFailedAt)
            // The server's clock: the same machine, so within a second of the calls.
            XCTAssertGreaterThan(failedAt, before.addingTimeInterval(-1))
            XCTAssertLessThan(failedAt, after.addingTimeInterval(1))
            XCTAssertNil(summary.lastRefreshedAt, "never refreshed successfully")
        }
        let everything = try await fixture.vault.list()
        XCTAssertEqual(everything.count, 7)
        XCTAssertEqual(everything.filter(\.needsReauthorization).map(\.clientID), refused)
        for summary in everything where !refused.contains(summary.clientID) {
            XCTAssertNil(summary.lastRefreshError)
            XCTAssertNil(summary.lastRefreshFailedAt)
        }

        // Storing new tokens clears the mark; the failure's time stays as history.
        endpoint.addRefreshToken("rt-reconnected")
        try await fixture.vault.store(expiredTokens(refresh: "rt-reconnected"), client: "c4", provider: "zoho_crm")
        let remaining = try await fixture.vault.list(filter: .needsReauthorization)
        XCTAssertEqual(remaining.map(\.clientID), ["c1", "c2", "c5", "c6"])
        _ = try await fixture.vault.accessToken(client: "c4", provider: "zoho_crm")
        let reconnected = try await fixture.vault.list().first { $0.clientID == "c4" }
        XCTAssertEqual(reconnected?.needsReauthorization, false)
        XCTAssertNil(reconnected?.lastRefreshError)
        XCTAssertNotNil(reconnected?.lastRefreshedAt)
        XCTAssertNotNil(reconnected?.lastRefreshFailedAt)
    }

    func testNoRowNeedsReauthorization() async throws {
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        var pages = 0
        try await fixture.vault.list(filter: .needsReauthorization, pageSize: 1) { _ in pages += 1 }
        XCTAssertEqual(pages, 0, "an empty result calls the body never")
        let listed = try await fixture.vault.list(filter: .needsReauthorization)
        XCTAssertTrue(listed.isEmpty)
        await assertVaultError(.invalidInput) {
            try await fixture.vault.list(filter: .needsReauthorization, pageSize: 0) { _ in }
        }
    }

    /// The summary's JSON keys are snake_case, as `TokenStatus`'s, and it carries no secret.
    func testTheSummaryEncodesInSnakeCaseWithoutSecrets() async throws {
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-secret-refresh"), client: "a", provider: "zoho_crm")
        await assertVaultError(.needsReauthorization) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        let listed = try await fixture.vault.list(filter: .needsReauthorization)
        let summary = try XCTUnwrap(listed.first)
        let data = try JSONEncoder().encode(summary)
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertFalse(text.contains("rt-secret-refresh"))
        XCTAssertFalse(text.contains("expired-access"))
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        // Synthesized Codable leaves nil out: no scopes were stored and no refresh succeeded.
        XCTAssertEqual(
            Set(object.keys),
            [
                "client_id", "provider", "key_id", "expires_at", "has_access_token", "created_at", "updated_at",
                "version", "needs_reauthorization", "last_refresh_error", "last_refresh_failed_at",
            ])
        XCTAssertEqual(object["needs_reauthorization"] as? Bool, true)
        XCTAssertEqual(try JSONDecoder().decode(TokenSummary.self, from: data), summary)
    }
}
