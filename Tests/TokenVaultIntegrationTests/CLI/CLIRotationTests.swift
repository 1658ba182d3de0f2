import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// rotate-key and import through the built binary, including SIGKILL at random points.
final class CLIRotationTests: XCTestCase {
    var database: TestDatabase!
    var oldKey: String!
    var newKey: String!
    var oldCLI: CLIRunner!
    var rotatingCLI: CLIRunner!

    override func setUp() async throws {
        database = try await TestDatabase.create()
        oldKey = VaultKey.generate().exportBase64()
        newKey = VaultKey.generate().exportBase64()
        oldCLI = CLIRunner(databaseURL: database.url, key: oldKey)
        rotatingCLI = CLIRunner(databaseURL: database.url, key: newKey)
        rotatingCLI.environment["TOKEN_VAULT_PREVIOUS_KEYS"] = oldKey
        XCTAssertEqual(try oldCLI.run(["migrate"]).status, 0)
    }

    override func tearDown() async throws {
        await database.drop()
    }

    func ndjson(_ count: Int) -> String {
        (0..<count).map { index in
            #"{"client_id":"c-\#(index)","provider":"zoho_crm","access_token":"1000.access-\#(index)","#
                + #""refresh_token":"1000.refresh-\#(index)","expires_in":3600,"api_domain":"https://www.zohoapis.eu"}"#
        }.joined(separator: "\n") + "\n"
    }

    /// Every row opens with only the new key and holds its original tokens.
    func assertAllRowsIntactUnderNewKeyOnly(count: Int, file: StaticString = #filePath, line: UInt = #line) async throws
    {
        let newOnly = CLIRunner(databaseURL: database.url, key: newKey)
        let verify = try newOnly.run(["verify"])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr, file: file, line: line)
        XCTAssertTrue(
            verify.stdout.contains("\(count) rows checked, 0 failing fields"), verify.stdout, file: file, line: line)
        let vault = try Vault(
            configuration: VaultConfiguration(
                databaseURL: database.url, keyring: try Keyring(current: VaultKey(base64: newKey))))
        for index in Array(0..<count).shuffled().prefix(100) {
            let stored = try await vault.fetch(client: "c-\(index)", provider: "zoho_crm")
            XCTAssertEqual(stored.refreshToken.reveal(), "1000.refresh-\(index)", file: file, line: line)
            XCTAssertEqual(stored.accessToken?.reveal(), "1000.access-\(index)", file: file, line: line)
        }
        await vault.shutdown()
    }

    func testImportRotateVerify() async throws {
        let imported = try oldCLI.run(["import", "--batch-size", "700"], stdin: ndjson(3000))
        XCTAssertEqual(imported.status, 0, imported.stderr)
        XCTAssertTrue(imported.stdout.hasPrefix("imported 3000 rows"), imported.stdout)

        let dry = try rotatingCLI.run(["rotate-key", "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertTrue(dry.stdout.contains("dry run: 3000 rows would be re-sealed"), dry.stdout)

        let rotated = try rotatingCLI.run(["rotate-key", "--json"])
        XCTAssertEqual(rotated.status, 0, rotated.stderr)
        let report = try JSONDecoder().decode(RotationReport.self, from: Data(rotated.stdout.utf8))
        XCTAssertEqual(report.resealed, 3000)
        XCTAssertEqual(report.remaining, 0)
        try await assertAllRowsIntactUnderNewKeyOnly(count: 3000)

        let again = try rotatingCLI.run(["rotate-key"])
        XCTAssertTrue(again.stdout.contains("re-sealed 0 rows"), again.stdout)

        // Verifying with only the OLD key now fails, naming the key id.
        let oldOnly = try oldCLI.run(["verify"])
        XCTAssertEqual(oldOnly.status, 1)
        XCTAssertTrue(oldOnly.stdout.contains("unknown key id"))
    }

    func testSIGKILLAtRandomPointsThenAFinalRunLosesNothing() async throws {
        let count = 20_000
        XCTAssertEqual(try oldCLI.run(["import", "--batch-size", "5000"], stdin: ndjson(count)).status, 0)
        var kills = 0
        for round in 0..<5 {
            let process = Process()
            process.executableURL = CLIRunner.binary
            process.arguments = ["rotate-key", "--batch-size", "100"]
            process.environment = rotatingCLI.environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let delay = UInt64.random(in: 30_000_000...(150_000_000 + UInt64(round) * 50_000_000))
            try? await Task.sleep(nanoseconds: delay)
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                kills += 1
            }
            process.waitUntilExit()
            let partial = try await AdminSQL.query(
                "SELECT count(*), count(DISTINCT key_id) FROM oauth_tokens", url: database.url)
            XCTAssertEqual(partial.first?[0], String(count), "no row lost after kill \(round)")
            // Every row opens with the two keys: nothing half-written.
            let verify = try rotatingCLI.run(["verify", "--batch-size", "5000"])
            XCTAssertEqual(verify.status, 0, "after kill \(round): \(verify.stdout)")
        }
        XCTAssertGreaterThan(kills, 0, "at least one run was killed mid-way")
        let final = try rotatingCLI.run(["rotate-key"])
        XCTAssertEqual(final.status, 0, final.stderr)
        try await assertAllRowsIntactUnderNewKeyOnly(count: count)
    }

    /// `list` prints a page at a time; the pages must join into one table and one JSON array, in key order.
    func testListJoinsItsPages() async throws {
        let count = 2345
        XCTAssertEqual(try oldCLI.run(["import"], stdin: ndjson(count)).status, 0)
        let json = try oldCLI.run(["list", "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.count, count)
        let ids = rows.compactMap { $0["client_id"] as? String }
        XCTAssertEqual(ids, ids.sorted(), "key order across pages")
        XCTAssertEqual(Set(ids).count, count, "no row twice, none missing")
        XCTAssertTrue(json.stdout.hasPrefix("[\n  {\n    \"client_id\" : "), json.stdout.prefix(80).description)
        XCTAssertTrue(json.stdout.hasSuffix("  }\n]\n"))
        let table = try oldCLI.run(["list"])
        let lines = table.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, count + 2, "header, rows, count")
        XCTAssertTrue(lines[0].hasPrefix("CLIENT"))
        XCTAssertEqual(lines.last, "\(count) rows")
        _ = try await AdminSQL.query("TRUNCATE oauth_tokens", url: database.url)
        XCTAssertEqual(try oldCLI.run(["list", "--json"]).stdout, "[\n\n]\n", "as JSONEncoder writes an empty array")
        XCTAssertEqual(
            try oldCLI.run(["list"]).stdout,
            "CLIENT  PROVIDER  KEY ID  EXPIRES  UPDATED  REAUTH  REFRESHED  FAILED  LAST ERROR\n0 rows\n")
    }

    func testCtrlCStopsAfterTheCurrentBatchAndARerunFinishes() async throws {
        let count = 20_000
        XCTAssertEqual(try oldCLI.run(["import", "--batch-size", "5000"], stdin: ndjson(count)).status, 0)
        let (process, output, errors) = try rotatingCLI.start(["rotate-key", "--batch-size", "100"])
        // Wait until some rows are re-sealed, then press Ctrl-C once.
        try await waitForPositiveCount(
            "SELECT count(*) FROM oauth_tokens WHERE version > 1", url: database.url, interval: 10_000_000)
        kill(process.processIdentifier, SIGINT)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, text + stderr)
        XCTAssertTrue(stderr.contains("stopping after the current batch"), stderr)
        XCTAssertTrue(text.contains("interrupted:"), text)
        XCTAssertTrue(text.contains("run `token-vault rotate-key` again"), text)
        let rerun = try rotatingCLI.run(["rotate-key"])
        XCTAssertEqual(rerun.status, 0, rerun.stdout + rerun.stderr)
        try await assertAllRowsIntactUnderNewKeyOnly(count: count)
    }

    func testAConcurrentPutDuringRotationSurvives() async throws {
        let count = 5000
        XCTAssertEqual(try oldCLI.run(["import"], stdin: ndjson(count)).status, 0)
        let process = Process()
        process.executableURL = CLIRunner.binary
        process.arguments = ["rotate-key", "--batch-size", "50"]
        process.environment = rotatingCLI.environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // Meanwhile a service (already on the new key) stores fresh tokens for some rows.
        let service = try Vault(
            configuration: VaultConfiguration(
                databaseURL: database.url,
                keyring: try Keyring(current: VaultKey(base64: newKey), previous: [VaultKey(base64: oldKey)])))
        let chosen = stride(from: 7, to: count, by: 97).map { $0 }
        for index in chosen {
            try await service.store(
                TokenSet(
                    accessToken: Secret("1000.fresh-\(index)"), refreshToken: Secret("1000.fresh-refresh-\(index)")),
                client: "c-\(index)", provider: "zoho_crm")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text)
        for index in chosen {
            let stored = try await service.fetch(client: "c-\(index)", provider: "zoho_crm")
            XCTAssertEqual(stored.refreshToken.reveal(), "1000.fresh-refresh-\(index)")
        }
        let verify = try CLIRunner(databaseURL: database.url, key: newKey).run(["verify"])
        XCTAssertEqual(verify.status, 0, verify.stdout)
        await service.shutdown()
    }

    func testRefusals() throws {
        XCTAssertEqual(try oldCLI.run(["import"], stdin: ndjson(5)).status, 0)
        // Rows under a key that is in neither list.
        let stranger = CLIRunner(databaseURL: database.url, key: newKey)
        let unknown = try stranger.run(["rotate-key"])
        XCTAssertEqual(unknown.status, 78)
        XCTAssertTrue(unknown.stderr.contains("5 rows under key"), unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("Nothing was changed"), unknown.stderr)
        // No current key.
        var noKey = rotatingCLI!
        noKey.environment["TOKEN_VAULT_KEY"] = nil
        XCTAssertEqual(try noKey.run(["rotate-key"]).status, 78)
        // The new key also among the previous keys.
        var repeated = rotatingCLI!
        repeated.environment["TOKEN_VAULT_PREVIOUS_KEYS"] = "\(oldKey!),\(newKey!)"
        let twice = try repeated.run(["rotate-key"])
        XCTAssertEqual(twice.status, 78)
        XCTAssertTrue(twice.stderr.contains("also appears among the previous keys"), twice.stderr)
        XCTAssertFalse(twice.stderr.contains(newKey))
        XCTAssertEqual(try rotatingCLI.run(["rotate-key", "--batch-size", "0"]).status, 64)
    }

    func testImportStopsAtABadLineAndCanSkip() throws {
        let input = ndjson(3) + "{not json}\n" + ndjson(2).replacingOccurrences(of: "c-", with: "d-")
        let stopped = try oldCLI.run(["import"], stdin: input)
        XCTAssertEqual(stopped.status, 65)
        XCTAssertTrue(stopped.stderr.contains("line 4: not a JSON object"), stopped.stderr)
        XCTAssertTrue(stopped.stdout.contains("imported 3 rows"), stopped.stdout)
        let skipped = try oldCLI.run(["import", "--skip-invalid"], stdin: input)
        XCTAssertEqual(skipped.status, 0)
        XCTAssertTrue(skipped.stdout.contains("imported 5 rows"), skipped.stdout)
        XCTAssertTrue(skipped.stdout.contains("skipped 1 invalid line"), skipped.stdout)
        XCTAssertTrue(skipped.stderr.contains("line 4 skipped"), skipped.stderr)
        let noRefresh = try oldCLI.run(
            ["import"], stdin: #"{"client_id":"x","provider":"p","access_token":"a"}"# + "\n")
        XCTAssertEqual(noRefresh.status, 65)
        XCTAssertTrue(noRefresh.stderr.contains("line 1: the token response has no refresh_token"), noRefresh.stderr)
    }

    /// A line over 1 MiB (here 3 MiB) is refused by its length, read without holding it whole; with
    /// --skip-invalid the import goes on after it.
    func testImportRefusesAnOverlongLineAndCanSkipIt() throws {
        let long = #"{"client_id":""# + String(repeating: "x", count: 3 << 20) + #""}"# + "\n"
        let input = ndjson(1) + long + ndjson(1).replacingOccurrences(of: "c-", with: "e-")
        let stopped = try oldCLI.run(["import"], stdin: input)
        XCTAssertEqual(stopped.status, 65, stopped.stderr)
        XCTAssertTrue(
            stopped.stderr.contains("line 2: the line is 3145744 bytes, more than the 1048576"), stopped.stderr)
        let skipped = try oldCLI.run(["import", "--skip-invalid"], stdin: input)
        XCTAssertEqual(skipped.status, 0, skipped.stderr)
        XCTAssertTrue(skipped.stdout.contains("imported 2 rows"), skipped.stdout)
        XCTAssertTrue(skipped.stdout.contains("skipped 1 invalid line"), skipped.stdout)
    }

    func testImportAcceptsNullScopeAndNullAccessToken() throws {
        let line = #"{"client_id":"n","provider":"zoho_crm","access_token":null,"refresh_token":"1000.r","scope":null}"#
        let result = try oldCLI.run(["import"], stdin: line + "\n")
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    func testImportAcceptsExpiresAtFromAPlaintextExport() async throws {
        let line =
            #"{"client_id":"legacy","provider":"zoho_crm","access_token":"1000.a","refresh_token":"1000.r","expires_at":"2030-01-02T03:04:05.123456+00:00","scope":"ZohoCRM.modules.ALL","api_domain":"https://www.zohoapis.com"}"#
        XCTAssertEqual(try oldCLI.run(["import"], stdin: line + "\n").status, 0)
        let status = try oldCLI.run(["list", "--json"])
        XCTAssertTrue(status.stdout.contains("2030-01-02T03:04:05Z"), status.stdout)
    }
}
