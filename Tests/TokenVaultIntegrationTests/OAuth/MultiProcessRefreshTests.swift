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
        let endpoint = try FakeTokenEndpoint.start(rotation: .rotating)
        defer { endpoint.stop() }
        endpoint.addRefreshToken("rt-stampede")
        endpoint.enqueue(.delay(0.3))  // a slow provider widens the race window
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-stampede"), client: "herd", provider: "zoho_crm")

        let gate = FileManager.default.temporaryDirectory.appendingPathComponent("tv-gate-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: gate) }
        var children: [(Process, Pipe)] = []
        for _ in 0..<4 {
            children.append(
                try launch(
                    "token-vault-test-stampede",
                    ["--client", "herd", "--provider", "zoho_crm", "--callers", "50", "--wait-for", gate],
                    environment: environment(fixture, endpoint)))
        }
        try? await Task.sleep(nanoseconds: 300_000_000)  // let all four connect and wait at the gate
        XCTAssertTrue(FileManager.default.createFile(atPath: gate, contents: nil), "cannot create the gate file")
        var tokens: [String] = []
        for (process, output) in children {
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, text)
            tokens += text.split(separator: "\n").map(String.init)
        }
        XCTAssertEqual(tokens.count, 200)
        XCTAssertEqual(Set(tokens).count, 1, "every caller got the same new token: \(Set(tokens))")
        XCTAssertEqual(endpoint.requestCount, 1, "exactly one call reached the token endpoint")
        XCTAssertEqual(endpoint.reuseCount, 0, "no rotated-out refresh token was presented")
        let stored = try await fixture.vault.fetch(client: "herd", provider: "zoho_crm")
        XCTAssertEqual(stored.accessToken?.reveal(), tokens.first)
        XCTAssertTrue(endpoint.isValidRefreshToken(stored.refreshToken.reveal()), "the rotated refresh token was kept")
    }

    func testAProcessKilledWhileHoldingTheRefreshLockDoesNotBlockTheOthers() async throws {
        let endpoint = try FakeTokenEndpoint.start()
        defer { endpoint.stop() }
        endpoint.addRefreshToken("rt-kill")
        endpoint.enqueue(.delay(30))  // the first refresh hangs at the provider
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-kill"), client: "victim", provider: "zoho_crm")
        let env = environment(fixture, endpoint)

        let (holder, _) = try launch(
            "token-vault", ["token", "--client", "victim", "--provider", "zoho_crm"], environment: env)
        // Wait until the holder has the lock and its request is at the provider.
        let deadline = Date().addingTimeInterval(20)
        while endpoint.startedCount == 0 && Date() < deadline { try? await Task.sleep(nanoseconds: 20_000_000) }
        XCTAssertEqual(endpoint.startedCount, 1, "the first process reached the provider")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        XCTAssertEqual(holder.terminationReason, .uncaughtSignal)

        let started = Date()
        let (second, output) = try launch(
            "token-vault", ["token", "--client", "victim", "--provider", "zoho_crm"], environment: env)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        second.waitUntilExit()
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(second.terminationStatus, 0)
        XCTAssertLessThan(elapsed, 10, "the lock of the killed process was released at once, not after a timeout")
        let stored = try await fixture.vault.fetch(client: "victim", provider: "zoho_crm")
        XCTAssertEqual(stored.accessToken?.reveal(), text.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(stored.refreshToken.reveal(), "rt-kill", "nothing was lost")
        XCTAssertTrue(stored.isAccessTokenValid(margin: 300))
        let report = try await fixture.vault.verify()
        XCTAssertTrue(report.ok)
    }
}
