import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

extension DatabaseTestCase {
    /// Four `token-vault-test-stampede` processes of fifty callers each, released together by a gate file, on one
    /// expired row whose provider rotates refresh tokens and answers slowly: exactly one provider call, every
    /// caller gets its token, and the rotated refresh token is kept. `databaseURL` says how the processes reach the
    /// fixture's database (directly, or through a pooler).
    func assertStampedeMakesOneRefresh(
        databaseURL: (VaultFixture) throws -> String, extraEnvironment: [String: String] = [:],
        file: StaticString = #filePath, line: UInt = #line
    ) async throws {
        let endpoint = try FakeTokenEndpoint.start(rotation: .rotating)
        defer { endpoint.stop() }
        endpoint.addRefreshToken("rt-stampede")
        endpoint.enqueue(.delay(0.3))  // a slow provider widens the race window
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(expiredTokens(refresh: "rt-stampede"), client: "herd", provider: "zoho_crm")
        let environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "DATABASE_URL": try databaseURL(fixture),
            "TOKEN_VAULT_KEY": fixture.keyring.current.exportBase64(),
            "ZOHO_CLIENT_ID": endpoint.clientID,
            "ZOHO_CLIENT_SECRET": endpoint.clientSecret,
            "ZOHO_ACCOUNTS_URL": endpoint.baseURL.absoluteString,
            "TOKEN_VAULT_POOL_SIZE": "2",
        ].merging(extraEnvironment) { $1 }

        let gate = FileManager.default.temporaryDirectory.appendingPathComponent("tv-gate-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: gate) }
        var children: [(Process, Pipe)] = []
        for _ in 0..<4 {
            children.append(
                try CLIRunner.launch(
                    "token-vault-test-stampede",
                    ["--client", "herd", "--provider", "zoho_crm", "--callers", "50", "--wait-for", gate],
                    environment: environment, standardError: FileHandle.standardError))
        }
        try? await Task.sleep(nanoseconds: 300_000_000)  // let all four start and wait at the gate
        XCTAssertTrue(
            FileManager.default.createFile(atPath: gate, contents: nil), "cannot create the gate file", file: file,
            line: line)
        var tokens: [String] = []
        for (process, output) in children {
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, text, file: file, line: line)
            tokens += text.split(separator: "\n").map(String.init)
        }
        XCTAssertEqual(tokens.count, 200, file: file, line: line)
        XCTAssertEqual(
            Set(tokens).count, 1, "every caller got the same new token: \(Set(tokens))", file: file, line: line)
        XCTAssertEqual(endpoint.requestCount, 1, "exactly one call reached the token endpoint", file: file, line: line)
        XCTAssertEqual(endpoint.reuseCount, 0, "no rotated-out refresh token was presented", file: file, line: line)
        let stored = try await fixture.vault.fetch(client: "herd", provider: "zoho_crm")
        XCTAssertEqual(stored.accessToken?.reveal(), tokens.first, file: file, line: line)
        XCTAssertTrue(
            endpoint.isValidRefreshToken(stored.refreshToken.reveal()), "the rotated refresh token was kept",
            file: file, line: line)
    }
}
