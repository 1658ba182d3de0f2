import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// Several OS processes (the `token-vault-test-stampede` and `token-vault` binaries) on one database and one
/// token endpoint.
final class MultiProcessRefreshTests: DatabaseTestCase {
    func environment(_ fixture: VaultFixture, _ endpoint: FakeTokenEndpoint) -> [String: String] {
        [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "DATABASE_URL": fixture.database.url,
            "TOKEN_VAULT_KEY": fixture.keyring.current.exportBase64(),
            "ZOHO_CLIENT_ID": endpoint.clientID,
            "ZOHO_CLIENT_SECRET": endpoint.clientSecret,
            "ZOHO_ACCOUNTS_URL": endpoint.baseURL.absoluteString,
            "TOKEN_VAULT_POOL_SIZE": "2",
        ]
    }

    func launch(_ tool: String, _ arguments: [String], environment: [String: String]) throws -> (Process, Pipe) {
        try CLIRunner.launch(tool, arguments, environment: environment, standardError: FileHandle.standardError)
    }

    func testFourProcessesTimesFiftyCallersMakeExactlyOneRefresh() async throws {
        try await assertStampedeMakesOneRefresh(databaseURL: { $0.database.url })
    }

    /// The holder is SIGKILLed while its request is at the provider: its lease stays until it expires, then the
    /// next caller takes the refresh over. The killed holder's request still counts towards the rate cap.
    func testAProcessKilledWhileHoldingTheLeaseIsTakenOverWhenTheLeaseExpires() async throws {
        let endpoint = try FakeTokenEndpoint.start()
        defer { endpoint.stop() }
        endpoint.addRefreshToken("rt-kill")
        endpoint.enqueue(.delay(30))  // the first refresh hangs at the provider
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-kill"), client: "victim", provider: "zoho_crm")
        let env = environment(fixture, endpoint)
        // A 2 s request deadline and one attempt: the lease lasts 2 + 10 = 12 s.
        let short = ["--client", "victim", "--provider", "zoho_crm", "--request-timeout", "2", "--attempts", "1"]

        let claimed = Date()
        let (holder, _) = try launch("token-vault-test-stampede", short + ["--callers", "1"], environment: env)
        // Wait until the holder has the lease and its request is at the provider.
        let deadline = Date().addingTimeInterval(20)
        while endpoint.startedCount == 0 && Date() < deadline { try? await Task.sleep(nanoseconds: 20_000_000) }
        XCTAssertEqual(endpoint.startedCount, 1, "the first process reached the provider")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        XCTAssertEqual(holder.terminationReason, .uncaughtSignal)
        let lease = try await fixture.sql("SELECT count(*) FROM token_vault_refresh_leases")
        XCTAssertEqual(lease.first?.first, "1", "the killed holder's lease is still there")

        let (second, output) = try launch(
            "token-vault-test-stampede", short + ["--callers", "5"], environment: env)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        second.waitUntilExit()
        let elapsed = Date().timeIntervalSince(claimed)
        XCTAssertEqual(second.terminationStatus, 0, text)
        XCTAssertGreaterThan(elapsed, 11, "the lease was honoured until it expired")
        XCTAssertLessThan(elapsed, 20, "the expired lease was taken over within the lease time and a little more")
        let tokens = Set(text.split(separator: "\n").map(String.init))
        XCTAssertEqual(tokens.count, 1, "the five callers shared one refresh")
        XCTAssertEqual(endpoint.startedCount, 2, "one request from the killed holder, one from its successor")
        let stored = try await fixture.vault.fetch(client: "victim", provider: "zoho_crm")
        XCTAssertEqual(stored.accessToken?.reveal(), tokens.first)
        XCTAssertEqual(stored.refreshToken.reveal(), "rt-kill", "nothing was lost")
        XCTAssertTrue(stored.isAccessTokenValid(margin: 300))
        let history = try await fixture.sql(
            "SELECT cardinality(refresh_history) FROM oauth_tokens WHERE client_id = 'victim'")
        XCTAssertEqual(history.first?.first, "2", "the killed holder's request counts towards the rate cap")
        let leases = try await fixture.sql("SELECT count(*) FROM token_vault_refresh_leases")
        XCTAssertEqual(leases.first?.first, "0", "the successor released its lease")
        let report = try await fixture.vault.verify()
        XCTAssertTrue(report.ok)
    }
}
