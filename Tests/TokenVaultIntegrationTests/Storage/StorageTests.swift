import Foundation
import TokenVaultTesting
import XCTest

@testable import TokenVault

final class StorageTests: DatabaseTestCase {
    func testStoreAndFetchRoundTrip() async throws {
        let fixture = try await makeFixture()
        let tokens = sampleTokens()
        let version = try await fixture.vault.store(tokens, client: "acme", provider: "zoho_crm")
        XCTAssertEqual(version, 1)
        let stored = try await fixture.vault.fetch(client: "acme", provider: "zoho_crm")
        XCTAssertEqual(stored.accessToken, tokens.accessToken)
        XCTAssertEqual(stored.refreshToken, tokens.refreshToken)
        XCTAssertEqual(stored.scopes, "ZohoCRM.modules.ALL")
        XCTAssertEqual(stored.metadata["api_domain"], .string("https://www.zohoapis.eu"))
        XCTAssertEqual(stored.keyID, fixture.keyring.current.id)
        XCTAssertEqual(
            stored.expiresAt!.timeIntervalSince1970, tokens.expiresAt!.timeIntervalSince1970, accuracy: 0.000_001)
    }

    func testUpsertUpdatesEveryFieldIncludingMetadataAndVersion() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "acme", provider: "zoho_crm")
        let before = try await fixture.sql("SELECT id, created_at, updated_at FROM oauth_tokens")
        var second = sampleTokens(expiresIn: 60)
        second.metadata = ["api_domain": .string("https://www.zohoapis.com.au")]
        second.scopes = "ZohoCalendar.event.ALL"
        let version = try await fixture.vault.store(second, client: "acme", provider: "zoho_crm")
        XCTAssertEqual(version, 2)
        let stored = try await fixture.vault.fetch(client: "acme", provider: "zoho_crm")
        XCTAssertEqual(stored.accessToken, second.accessToken)
        XCTAssertEqual(stored.refreshToken, second.refreshToken)
        XCTAssertEqual(stored.metadata, ["api_domain": .string("https://www.zohoapis.com.au")])
        XCTAssertEqual(stored.scopes, "ZohoCalendar.event.ALL")
        let after = try await fixture.sql("SELECT id, created_at, updated_at, count(*) OVER () FROM oauth_tokens")
        XCTAssertEqual(after.count, 1)
        XCTAssertEqual(after[0][0], before[0][0], "the row keeps its id")
        XCTAssertEqual(after[0][1], before[0][1], "created_at is kept")
        XCTAssertNotEqual(after[0][2], before[0][2], "updated_at moves")
    }

    func testRefreshTokenOnlyRowHasNoAccessToken() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(
            TokenSet(accessToken: nil, refreshToken: Secret("1000.refresh-only")), client: "c", provider: "p")
        let stored = try await fixture.vault.fetch(client: "c", provider: "p")
        XCTAssertNil(stored.accessToken)
        XCTAssertEqual(stored.refreshToken.reveal(), "1000.refresh-only")
        await assertVaultError(.tokenExpired) { try await fixture.vault.storedAccessToken(client: "c", provider: "p") }
    }

    func testOneHundredConcurrentUpsertsLeaveOneRowThatOpensToASubmittedValue() async throws {
        let fixture = try await makeFixture(maximumConnections: 8)
        let submitted = (0..<100).map { index in
            sampleTokens(access: "access-\(index)-\(UUID())", refresh: "refresh-\(index)-\(UUID())")
        }
        try await withThrowingTaskGroup(of: Int64.self) { group in
            for tokens in submitted {
                group.addTask { try await fixture.vault.store(tokens, client: "race", provider: "zoho_crm") }
            }
            var versions: [Int64] = []
            for try await version in group { versions.append(version) }
            XCTAssertEqual(Set(versions), Set(1...100), "every write incremented the version exactly once")
        }
        let count = try await fixture.sql("SELECT count(*) FROM oauth_tokens")
        XCTAssertEqual(count[0][0], "1")
        let stored = try await fixture.vault.fetch(client: "race", provider: "zoho_crm")
        let winner = try XCTUnwrap(submitted.first { $0.accessToken == stored.accessToken })
        XCTAssertEqual(winner.refreshToken, stored.refreshToken, "access and refresh come from the same write")
    }

    func testDataSurvivesANewConnectionPool() async throws {
        let fixture = try await makeFixture()
        let tokens = sampleTokens()
        try await fixture.vault.store(tokens, client: "acme", provider: "zoho_calendar")
        await fixture.vault.shutdown()
        let reopened = try fixture.reopen()
        let stored = try await reopened.fetch(client: "acme", provider: "zoho_calendar")
        XCTAssertEqual(stored.refreshToken, tokens.refreshToken)
        await reopened.shutdown()
        await fixture.database.drop()
    }

    func testMissingRowIsNotFoundWithAHint() async throws {
        let fixture = try await makeFixture()
        let error = await assertVaultError(.notFound) {
            try await fixture.vault.fetch(client: "ghost", provider: "zoho_crm")
        }
        XCTAssertEqual(error?.message, "no tokens are stored for client 'ghost', provider 'zoho_crm'.")
        let deleted = try await fixture.vault.delete(client: "ghost", provider: "zoho_crm")
        XCTAssertFalse(deleted)
    }

    func testDeleteAndList() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "b", provider: "zoho_crm")
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "zoho_calendar")
        let listed = try await fixture.vault.list()
        XCTAssertEqual(listed.map { "\($0.clientID)/\($0.provider)" }, ["a/zoho_calendar", "a/zoho_crm", "b/zoho_crm"])
        let deleted = try await fixture.vault.delete(client: "a", provider: "zoho_crm")
        XCTAssertTrue(deleted)
        let after = try await fixture.vault.list()
        XCTAssertEqual(after.count, 2)
    }

    func testNoPlaintextTokenInTheDatabase() async throws {
        let fixture = try await makeFixture()
        let tokens = sampleTokens(access: "PLAINTEXT-ACCESS-MARKER-123", refresh: "PLAINTEXT-REFRESH-MARKER-456")
        try await fixture.vault.store(tokens, client: "acme", provider: "zoho_crm")
        let dump = try await fixture.sql("SELECT row_to_json(t)::text FROM oauth_tokens t")
        let text = dump.map { $0.compactMap { $0 }.joined() }.joined()
        XCTAssertFalse(text.contains("PLAINTEXT"))
        // bytea shows as hex in row_to_json; look for the hex of the marker too.
        let hexMarker = Array("PLAINTEXT-".utf8).map { String(format: "%02x", $0) }.joined()
        XCTAssertFalse(text.lowercased().contains(hexMarker))
    }

    /// PostgreSQL cannot store U+0000 in jsonb (the statement fails) or in a text parameter (cut short, silently).
    func testANulInScopesOrMetadataIsRefusedBeforeAnythingIsWritten() async throws {
        let fixture = try await makeFixture()
        var scopes = sampleTokens()
        scopes.scopes = "ZohoCRM.modules.ALL\u{0},ZohoCRM.users.ALL"
        let scopeError = await assertVaultError(.invalidInput) {
            try await fixture.vault.store(scopes, client: "nul", provider: "zoho_crm")
        }
        XCTAssertTrue(
            scopeError?.message.contains("scope holds a NUL character") ?? false, "\(String(describing: scopeError))")
        let metadataCases: [[String: JSONValue]] = [
            ["api_domain": .string("https://www.zohoapis.eu\u{0}")], ["a\u{0}b": .string("v")],
            ["nested": .array([.object(["k": .string("\u{0}")])])],
        ]
        for metadata in metadataCases {
            var tokens = sampleTokens()
            tokens.metadata = metadata
            let error = await assertVaultError(.invalidInput) {
                try await fixture.vault.store(tokens, client: "nul", provider: "zoho_crm")
            }
            XCTAssertTrue(
                error?.message.contains("metadata holds a NUL character") ?? false, "\(String(describing: error))")
        }
        let rows = try await fixture.sql("SELECT count(*) FROM oauth_tokens")
        XCTAssertEqual(rows, [["0"]])
        let response = Array(#"{"access_token":"1000.a","refresh_token":"1000.r","scope":"A\u0000B"}"#.utf8)
        XCTAssertThrowsError(try TokenResponse.parse(response)) { error in
            XCTAssertEqual((error as? VaultError)?.code, .invalidInput)
        }
        for token in [#"AT-1\r\nX-Evil: 1"#, #"AT-2\u0000"#, #"AT-3\u007f"#] {
            for field in ["access_token", "refresh_token"] {
                let other = field == "access_token" ? "refresh_token" : "access_token"
                let body = Array(#"{"\#(field)":"\#(token)","\#(other)":"1000.fine"}"#.utf8)
                XCTAssertThrowsError(try TokenResponse.parse(body), "\(field) \(token)") { error in
                    let message = (error as? VaultError)?.message ?? ""
                    XCTAssertTrue(message.contains("\(field) in the token response holds a control character"), message)
                    XCTAssertFalse(message.contains("AT-"), "the token is not echoed")
                }
            }
        }
        // Printable ASCII only: a non-ASCII token (here an accented letter and a Cyrillic look-alike) is refused
        // too, by its own message.
        for token in ["AT-caf\u{e9}", "AT-\u{430}bc"] {
            let body = Array(#"{"access_token":"\#(token)","refresh_token":"1000.fine"}"#.utf8)
            XCTAssertThrowsError(try TokenResponse.parse(body), token) { error in
                let message = (error as? VaultError)?.message ?? ""
                XCTAssertTrue(
                    message.contains("access_token in the token response holds a non-ASCII character"), message)
                XCTAssertFalse(message.contains("AT-"), "the token is not echoed")
            }
        }
        let refused = Array(#"{"error":"bad\u0000tail\nline"}"#.utf8)
        XCTAssertThrowsError(try TokenResponse.parse(refused)) { error in
            let message = (error as? VaultError)?.message ?? ""
            XCTAssertFalse(message.contains("\u{0}") || message.contains("\n"), "a provider's text is sanitized")
        }
        // The backstop: no text value with a NUL reaches libpq, which would cut it short.
        let connection = try PGConnection(conninfo: fixture.database.url, applicationName: "nul-test")
        XCTAssertThrowsError(try connection.query("SELECT $1::text", [.text("a\u{0}b")])) { error in
            XCTAssertEqual((error as? VaultError)?.code, .invalidInput)
        }
        XCTAssertEqual(try connection.query("SELECT $1::text", [.text("ab")]).rowCount, 1)
    }

    func testInvalidClientOrProviderIsRefused() async throws {
        let fixture = try await makeFixture()
        await assertVaultError(.invalidInput) {
            try await fixture.vault.store(sampleTokens(), client: "", provider: "p")
        }
        await assertVaultError(.invalidInput) {
            try await fixture.vault.fetch(client: String(repeating: "x", count: 300), provider: "p")
        }
    }

    func testAnEmptyBatchSizeIsRefusedRatherThanReportingNothing() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "c", provider: "zoho_crm")
        for size in [0, -1] {
            await assertVaultError(.invalidInput) { try await fixture.vault.verify(batchSize: size) }
            await assertVaultError(.invalidInput) { try await fixture.vault.rotateKeys(batchSize: size) }
            await assertVaultError(.invalidInput) { try await fixture.vault.list(pageSize: size) { _ in } }
        }
        let report = try await fixture.vault.verify(batchSize: 1)
        XCTAssertEqual(report.rows, 1)
    }
}
