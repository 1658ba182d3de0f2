import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// `token-vault doctor` against a server configured well, one configured badly, and through PgBouncer.
final class CLIDoctorTests: LocalZohoCLITestCase {
    var keyFile: URL!

    override func setUp() async throws {
        try await super.setUp()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("doctor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        keyFile = directory.appendingPathComponent("vault.key")
        try Data((cli.environment["TOKEN_VAULT_KEY"]! + "\n").utf8).write(to: keyFile)
        try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: keyFile.path)
        cli.environment["TOKEN_VAULT_KEY"] = nil
        cli.environment["TOKEN_VAULT_KEY_FILE"] = keyFile.path
    }

    override func tearDown() async throws {
        try? FileManager.default.removeItem(at: keyFile.deletingLastPathComponent())
        try await super.tearDown()
    }

    struct Report: Decodable {
        struct Finding: Decodable {
            let check: String
            let severity: String
            let message: String
        }
        let findings: [Finding]

        func severity(_ check: String) -> [String] { findings.filter { $0.check == check }.map(\.severity) }
        func message(_ check: String) -> String {
            findings.filter { $0.check == check }.map(\.message).joined(separator: " | ")
        }
    }

    func doctor(_ runner: CLIRunner? = nil) throws -> (CLIRunner.Output, Report) {
        let output = try (runner ?? cli).run(["doctor", "--json"])
        let report = try JSONDecoder().decode(Report.self, from: Data(output.stdout.utf8))
        return (output, report)
    }

    func testAWellConfiguredVaultHasNothingToFix() throws {
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)
        let put = try cli.run(
            ["put", "--client", "acme", "--provider", "zoho_crm"],
            stdin: #"{"access_token":"1000.a","refresh_token":"1000.r","expires_in":3600}"#)
        XCTAssertEqual(put.status, 0, put.stderr)
        let (output, report) = try doctor()
        XCTAssertEqual(output.status, 0, output.stdout + output.stderr)
        for check in [
            "key", "key_file", "database", "tls", "schema", "keys", "reauthorization", "audit", "server_logs",
            "pooler",
        ] {
            XCTAssertEqual(report.severity(check).first, "ok", "\(check): \(report.message(check))")
        }
        XCTAssertTrue(report.message("key_file").contains("mode 0400"), report.message("key_file"))
        XCTAssertTrue(report.message("audit").contains("1 audit chains, 1 events: intact"), report.message("audit"))
        let text = try cli.run(["doctor"])
        XCTAssertEqual(text.status, 0)
        XCTAssertTrue(text.stdout.hasSuffix("0 errors, 0 warnings\n"), text.stdout)
        XCTAssertTrue(text.stdout.hasPrefix("OK      key             the current key "), text.stdout)
    }

    func testABadlyConfiguredServerAndVaultAreNamed() async throws {
        let port = Int.random(in: 20_000...40_000)
        let server = try TemporaryPostgres.start(
            port: port,
            settings: [
                "log_statement=all", "log_min_duration_statement=0", "shared_preload_libraries=auto_explain",
                "auto_explain.log_min_duration=0",
            ])
        defer { server.stop() }
        var bad = cli!
        bad.environment["DATABASE_URL"] = server.databaseURL
        let oldKey = VaultKey.generate()
        bad.environment["TOKEN_VAULT_KEY_FILE"] = nil
        bad.environment["TOKEN_VAULT_KEY"] = oldKey.exportBase64()
        XCTAssertEqual(try bad.run(["migrate"]).status, 0)
        for client in ["a", "b"] {
            let put = try bad.run(
                ["put", "--client", client, "--provider", "zoho_crm"],
                stdin: #"{"access_token":"1000.a","refresh_token":"1000.r","expires_in":3600}"#)
            XCTAssertEqual(put.status, 0, put.stderr)
        }
        try await AdminSQL.execute(
            """
            UPDATE oauth_tokens SET needs_reauthorization = true WHERE client_id = 'b';
            UPDATE token_vault_audit_events SET outcome = 'failed' WHERE client_id = 'a';
            """, url: server.databaseURL)
        let newKey = VaultKey.generate()
        let retired = VaultKey.generate()
        bad.environment["TOKEN_VAULT_KEY"] = newKey.exportBase64()
        bad.environment["TOKEN_VAULT_PREVIOUS_KEYS"] = "\(oldKey.exportBase64()),\(retired.exportBase64())"
        let (output, report) = try doctor(bad)
        XCTAssertEqual(output.status, 2, "an error: the broken audit chain\n" + output.stdout + output.stderr)
        XCTAssertEqual(report.severity("key"), ["ok", "warning", "warning"], report.message("key"))
        XCTAssertTrue(report.message("key").contains("TOKEN_VAULT_KEY_FILE"))
        XCTAssertEqual(report.severity("rotation"), ["warning"])
        XCTAssertTrue(report.message("rotation").contains("2 rows are still sealed under previous keys (\(oldKey.id))"))
        XCTAssertEqual(report.severity("retire"), ["info"])
        XCTAssertTrue(report.message("retire").contains("previous key \(retired.id) seals no row: safe to retire"))
        XCTAssertEqual(report.severity("reauthorization"), ["warning"])
        XCTAssertEqual(report.severity("audit"), ["error"])
        XCTAssertTrue(report.message("audit").contains("chain row:1:a/zoho_crm, event 1"), report.message("audit"))
        XCTAssertEqual(report.severity("server_logs"), ["warning"])
        for setting in ["log_statement = all", "log_min_duration_statement = 0", "auto_explain"] {
            XCTAssertTrue(report.message("server_logs").contains(setting), report.message("server_logs"))
        }
        XCTAssertEqual(report.severity("tls"), ["ok"], "a socket on this host")
        XCTAssertFalse(output.stdout.contains(oldKey.exportBase64()) || output.stdout.contains(newKey.exportBase64()))

        let keyless = try bad.run(["doctor"], extraEnvironment: ["TOKEN_VAULT_KEY": "not a key"])
        XCTAssertEqual(keyless.status, 2)
        XCTAssertTrue(keyless.stdout.hasPrefix("ERROR   key"), keyless.stdout)
        XCTAssertTrue(keyless.stdout.contains("OK      database"), "the database is still checked: " + keyless.stdout)
    }

    func testAPoolerInThePathIsNamed() throws {
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)
        var pooled = cli!
        pooled.environment["DATABASE_URL"] = try SharedPgBouncer.url(database: database.name)
        pooled.environment["TOKEN_VAULT_PREPARED_STATEMENTS"] = "off"
        let (output, report) = try doctor(pooled)
        XCTAssertEqual(output.status, 1, output.stdout + output.stderr)
        XCTAssertEqual(report.severity("pooler"), ["warning"])
        XCTAssertTrue(report.message("pooler").contains("a pooler or proxy is in the path"), report.message("pooler"))
    }
}
