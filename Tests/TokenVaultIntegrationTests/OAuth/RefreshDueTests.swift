import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// `Vault.refreshDue` and `token-vault refresh-due`: the background refresher's pass.
final class RefreshDueTests: DatabaseTestCase {
    var endpoint: FakeTokenEndpoint!

    override func setUp() async throws {
        endpoint = try FakeTokenEndpoint.start(rotation: .rotating)
    }

    override func tearDown() async throws {
        endpoint.stop()
        try await super.tearDown()
    }

    /// Rows in every state; `due` of them expire within the window.
    func seed(_ fixture: VaultFixture, due: Int) async throws {
        for index in 0..<due {
            endpoint.addRefreshToken("rt-due-\(index)")
            try await fixture.vault.store(
                expiredTokens(refresh: "rt-due-\(index)"), client: "due-\(index)", provider: "zoho_crm")
        }
        for index in 0..<5 {
            try await fixture.vault.store(
                sampleTokens(expiresIn: 7200), client: "fresh-\(index)", provider: "zoho_crm")
        }
        for index in 0..<3 {
            try await fixture.vault.store(
                expiredTokens(refresh: "rt-refused-\(index)"), client: "reauth-\(index)", provider: "zoho_crm")
        }
        try await fixture.vault.store(expiredTokens(refresh: "rt-other"), client: "elsewhere", provider: "github")
        _ = try await fixture.sql(
            "UPDATE oauth_tokens SET needs_reauthorization = true WHERE client_id LIKE 'reauth-%' RETURNING 1")
    }

    /// Two refreshers at once, and request-path callers on the same rows: each due token is refreshed exactly
    /// once, and every row ends fresh.
    func testTwoRefreshersAndRequestPathsMakeOneProviderCallPerToken() async throws {
        endpoint.setLatency(0.05)
        let fixture = try await makeFixture(maximumConnections: 4, providers: [endpoint.zoho()])
        try await seed(fixture, due: 60)
        let other = try fixture.reopen()
        let vault = fixture.vault
        async let first = vault.refreshDue(concurrency: 8)
        async let second = other.refreshDue(concurrency: 8)
        let callers = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in stride(from: 0, to: 60, by: 3) {
                    group.addTask { _ = try await vault.accessToken(client: "due-\(index)", provider: "zoho_crm") }
                }
                try await group.waitForAll()
            }
        }
        let reports = try await [first, second]
        try await callers.value
        await other.shutdown()

        XCTAssertEqual(endpoint.requestCount, 60, "one provider call per due token: \(reports)")
        XCTAssertEqual(endpoint.reuseCount, 0, "no rotated-out refresh token was presented")
        for report in reports {
            XCTAssertEqual(report.due, 64, "60 expiring, 3 needing re-authorization, 1 of another provider")
            XCTAssertEqual(report.needsReauthorization, 3)
            XCTAssertEqual(report.unknownProvider, 1)
            XCTAssertEqual(report.failed, [:])
            XCTAssertEqual(report.done, report.due)
        }
        XCTAssertLessThanOrEqual(reports.map(\.refreshed).reduce(0, +), 60)
        for index in 0..<60 {
            let stored = try await fixture.vault.fetch(client: "due-\(index)", provider: "zoho_crm")
            XCTAssertTrue(stored.isAccessTokenValid(margin: 360), "due-\(index) is fresh")
            XCTAssertTrue(endpoint.isValidRefreshToken(stored.refreshToken.reveal()), "due-\(index) kept its token")
        }
        let again = try await fixture.vault.refreshDue()
        XCTAssertEqual(again.refreshed, 0, "a second pass finds nothing due but what cannot be refreshed")
        XCTAssertEqual(again.due, 4)
        XCTAssertEqual(endpoint.requestCount, 60)
    }

    /// Two `token-vault refresh-due` processes at once, and request-path callers in this process, against an
    /// endpoint that rotates refresh tokens and revokes a family when a rotated-out one comes back: one provider
    /// call per due token, none reused, every row fresh.
    func testTwoRefresherProcessesAndRequestPathsMakeOneProviderCallPerToken() async throws {
        endpoint.setLatency(0.02)
        let key = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: key), providers: [endpoint.zoho()])
        try await seed(fixture, due: 120)
        var cli = CLIRunner(databaseURL: fixture.database.url, key: key.exportBase64())
        cli.environment["ZOHO_CLIENT_ID"] = endpoint.clientID
        cli.environment["ZOHO_CLIENT_SECRET"] = endpoint.clientSecret
        cli.environment["ZOHO_ACCOUNTS_URL"] = endpoint.baseURL.absoluteString
        let processes = try (0..<2).map { _ in try cli.start(["refresh-due", "--concurrency", "8", "--json"]) }
        let vault = fixture.vault
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in stride(from: 0, to: 120, by: 4) {
                group.addTask { _ = try await vault.accessToken(client: "due-\(index)", provider: "zoho_crm") }
            }
            try await group.waitForAll()
        }
        var refreshedByProcesses = 0
        for (process, output, errors) in processes {
            let stdout = output.fileHandleForReading.readDataToEndOfFile()
            let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 77, "rows needing re-authorization are left: \(stderr)")
            let report = try XCTUnwrap(JSONSerialization.jsonObject(with: stdout) as? [String: Any], stderr)
            // 120 expiring, 3 needing re-authorization, 1 of another provider: fewer when this process's request
            // paths refreshed some before the process read its page.
            let due = try XCTUnwrap(report["due"] as? Int)
            XCTAssertTrue((4...124).contains(due), "\(due)")
            XCTAssertEqual(report["needs_reauthorization"] as? Int, 3)
            XCTAssertEqual(report["failed"] as? [String: Int], [:])
            refreshedByProcesses += report["refreshed"] as? Int ?? 0
        }
        XCTAssertEqual(endpoint.requestCount, 120, "one provider call per due token")
        XCTAssertEqual(endpoint.reuseCount, 0, "no rotated-out refresh token was presented")
        XCTAssertLessThanOrEqual(refreshedByProcesses, 120)
        for index in 0..<120 {
            let stored = try await fixture.vault.fetch(client: "due-\(index)", provider: "zoho_crm")
            XCTAssertTrue(stored.isAccessTokenValid(margin: 360), "due-\(index) is fresh")
            XCTAssertTrue(endpoint.isValidRefreshToken(stored.refreshToken.reveal()), "due-\(index) kept its token")
        }
    }

    /// The window: a token with 10 minutes left is due within 15 minutes, not within the default 6.
    func testTheWindowDecidesWhatIsDue() async throws {
        endpoint.addRefreshToken("rt-window")
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(
            TokenSet(
                accessToken: Secret("1000.ten-minutes"), refreshToken: Secret("rt-window"),
                expiresAt: Date().addingTimeInterval(600)),
            client: "w", provider: "zoho_crm")
        let default6 = try await fixture.vault.refreshDue()
        XCTAssertEqual(default6.due, 0)
        let wide = try await fixture.vault.refreshDue(within: 900)
        XCTAssertEqual(wide.due, 1)
        XCTAssertEqual(wide.refreshed, 1)
        XCTAssertEqual(endpoint.requestCount, 1)
        await assertVaultError(.invalidInput) { try await fixture.vault.refreshDue(concurrency: 0) }
        await assertVaultError(.invalidInput) { try await fixture.vault.refreshDue(within: -1) }
    }

    /// The CLI: a summary, JSON, and an exit status that tells cron what needs a person.
    func testTheCommandReportsAndExitsByWhatIsLeft() async throws {
        let database = try await makeDatabase()
        let cli = CLIRunner(databaseURL: database.url, zohoAt: endpoint)
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)
        endpoint.addRefreshToken("rt-cli")
        let expired = #"{"access_token":"1000.old","refresh_token":"rt-cli","expires_in":1}"#
        XCTAssertEqual(try cli.run(["put", "--client", "c", "--provider", "zoho_crm"], stdin: expired).status, 0)
        let run = try cli.run(["refresh-due", "--within", "10m"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("1 row due within the window: 1 refreshed"), run.stdout)
        XCTAssertEqual(endpoint.requestCount, 1)

        let refused = #"{"access_token":"1000.old","refresh_token":"rt-unknown","expires_in":1}"#
        XCTAssertEqual(try cli.run(["put", "--client", "r", "--provider", "zoho_crm"], stdin: refused).status, 0)
        let failing = try cli.run(["refresh-due", "--json"])
        XCTAssertEqual(failing.status, 77, failing.stderr)
        let report = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(failing.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["due"] as? Int, 1)
        XCTAssertEqual(report["needs_reauthorization"] as? Int, 1)
        XCTAssertEqual(try cli.run(["refresh-due"]).status, 77, "still marked: not sent again")
        XCTAssertEqual(endpoint.requestCount, 2)
        for bad in [["--within", "soon"], ["--within", "-5"], ["--concurrency", "0"]] {
            XCTAssertEqual(try cli.run(["refresh-due"] + bad).status, 64, "\(bad)")
        }
    }

    /// Resident memory, from /proc/self/statm, in MiB.
    func residentMiB() -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        return (Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
            / 1_048_576
    }

    /// Pass after pass over the same 2,000 rows, 16 at a time on 4 connections (so calls wait for connections
    /// all the time): memory stays flat. A timer per wait grew it by about 6 MiB a pass (each cancelled
    /// `Task.sleep` kept its memory until the 60 s wait limit).
    func testRepeatedPassesKeepMemoryFlat() async throws {
        let fixture = try await makeFixture(maximumConnections: 4, providers: [endpoint.zoho()])
        var records: [ImportRecord] = []
        for index in 0..<2000 {
            endpoint.addRefreshToken("rt-flat-\(index)")
            records.append(
                ImportRecord(
                    client: "flat-\(index)", provider: "zoho_crm", tokens: expiredTokens(refresh: "rt-flat-\(index)")))
        }
        try await fixture.vault.importTokens(records)
        var resident: [Int] = []
        for _ in 0..<4 {
            _ = try await fixture.sql("UPDATE oauth_tokens SET token_expiry = now() - interval '1 minute' RETURNING 1")
            let report = try await fixture.vault.refreshDue(concurrency: 16)
            XCTAssertEqual(report.refreshed, 2000)
            resident.append(residentMiB())
        }
        XCTAssertLessThan(resident[3] - resident[1], 6, "resident MiB after each pass: \(resident)")
    }

    /// The refresher keeps rows fresh pass after pass; cancelling it while a refresh waits for the provider lets
    /// that refresh write what the provider answered (a rotated refresh token exists nowhere else), then returns.
    func testTheRefresherRunsPassesAndStopsWithoutLosingARefresh() async throws {
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        endpoint.addRefreshToken("rt-bg-1")
        try await fixture.vault.store(expiredTokens(refresh: "rt-bg-1"), client: "bg-1", provider: "zoho_crm")
        let passes = LockedCounter()
        let refresher = BackgroundRefresher(vault: fixture.vault, interval: 0.1) { result in
            if case .success = result { passes.increment() }
        }
        let running = Task { await refresher.run() }
        try await waitUntil("the first row is refreshed") { self.endpoint.requestCount == 1 }

        // A second row expires; its provider answers slowly; the refresher is cancelled meanwhile.
        endpoint.addRefreshToken("rt-bg-2")
        endpoint.enqueue(.delay(1))
        try await fixture.vault.store(expiredTokens(refresh: "rt-bg-2"), client: "bg-2", provider: "zoho_crm")
        try await waitUntil("the second refresh is at the provider") { self.endpoint.startedCount == 2 }
        let cancelled = Date()
        running.cancel()
        await running.value
        XCTAssertLessThan(Date().timeIntervalSince(cancelled), 5, "run() returned once the refresh was written")
        let stored = try await fixture.vault.fetch(client: "bg-2", provider: "zoho_crm")
        XCTAssertTrue(stored.isAccessTokenValid(margin: 300), "the refresh under way was written")
        XCTAssertTrue(endpoint.isValidRefreshToken(stored.refreshToken.reveal()), "its rotated refresh token kept")
        XCTAssertGreaterThanOrEqual(passes.value, 1)
        XCTAssertEqual(endpoint.requestCount, 2)
    }

    func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(20)
        while !condition() {
            guard Date() < deadline else { return XCTFail("timed out waiting until \(what)") }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
    }
}
