import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// The CLI through the built binary against a real database.
final class CLIEndToEndTests: XCTestCase {
    var database: TestDatabase!
    var cli: CLIRunner!

    override func setUp() async throws {
        database = try await TestDatabase.create()
        let key = try XCTUnwrap(
            try CLIRunner(databaseURL: "", key: nil).run(["keygen"]).stdout.split(separator: "\n").first)
        cli = CLIRunner(databaseURL: database.url, key: String(key))
    }

    override func tearDown() async throws {
        await database.drop()
    }

    let response = """
        {"access_token":"1000.ACCESS-e2e","refresh_token":"1000.REFRESH-e2e","expires_in":3600,
         "api_domain":"https://www.zohoapis.eu","token_type":"Bearer","scope":"ZohoCRM.modules.ALL",
         "id_token":"eyJ-should-not-be-kept"}
        """

    /// A client whose environment asks for LATIN1 (or a database whose default is LATIN1) would have the server
    /// transcode ids: the row would be stored under other bytes than the ones its seal is bound to, and never open.
    /// The vault sets client_encoding=UTF8 on every connection itself.
    func testAClientEncodingOtherThanUTF8IsOverridden() async throws {
        var latin1 = cli!
        latin1.environment["PGCLIENTENCODING"] = "LATIN1"
        XCTAssertEqual(try latin1.run(["migrate"]).status, 0)
        let put = try latin1.run(["put", "--client", "enc-café", "--provider", "zoho_crm"], stdin: response)
        XCTAssertEqual(put.status, 0, put.stderr)
        let token = try latin1.run(["token", "--client", "enc-café", "--provider", "zoho_crm"])
        XCTAssertEqual(token.status, 0, token.stderr)
        XCTAssertEqual(token.stdout, "1000.ACCESS-e2e\n")
        let stored = try await AdminSQL.query(
            "SELECT encode(convert_to(client_id, 'UTF8'), 'hex') FROM oauth_tokens", url: database.url)
        XCTAssertEqual(stored.first?.first ?? nil, "656e632d636166c3a9", "stored as the UTF-8 bytes of enc-café")
        XCTAssertEqual(try cli.run(["verify"]).status, 0)
    }

    /// A client id is any text a caller stored: a right-to-left override (U+202E) or a C1 control in it must not
    /// reach the terminal raw, where it could make a line read differently than it is.
    func testListAndStatusEscapeControlAndBidiCharacters() throws {
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)
        let evil = "evil\u{202E}txt.exe\u{85}"
        XCTAssertEqual(try cli.run(["put", "--client", evil, "--provider", "zoho_crm"], stdin: response).status, 0)
        let list = try cli.run(["list"])
        let status = try cli.run(["status", "--client", evil, "--provider", "zoho_crm"])
        for output in [list.stdout, status.stdout] {
            XCTAssertFalse(output.unicodeScalars.contains("\u{202E}"), output)
            XCTAssertFalse(output.unicodeScalars.contains("\u{85}"), output)
            XCTAssertTrue(output.contains(#"evil\u{202E}txt.exe\u{85}"#), output)
        }
        let missing = try cli.run(["token", "--client", evil + "x", "--provider", "zoho_crm"])
        XCTAssertFalse(missing.stderr.unicodeScalars.contains("\u{202E}"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains(#"\u{202E}"#), missing.stderr)
    }

    /// The CLI turns its core dumps off before it reads a key or a token: checked from outside, in
    /// /proc/PID/limits, while `put` waits for its standard input.
    func testTheCLITurnsItsCoreDumpsOff() throws {
        let process = Process()
        process.executableURL = CLIRunner.binary
        process.arguments = ["put", "--client", "core", "--provider", "zoho_crm"]
        process.environment = cli.environment
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = Pipe()
        process.standardError = Pipe()
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        let limitLine = { () -> String? in
            let limits = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/limits", encoding: .utf8))
            return limits?.split(separator: "\n").first { $0.hasPrefix("Max core file size") }.map(String.init)
        }
        // Soft and hard limits both 0 (a shell's usual default is a soft 0 under an unlimited hard limit, which
        // the process could raise again).
        let off = { (line: String?) in line.map { $0.split(separator: " ").suffix(3) == ["0", "0", "bytes"] } ?? false }
        let deadline = Date().addingTimeInterval(10)
        var line = limitLine()
        while Date() < deadline, !off(line) {
            Thread.sleep(forTimeInterval: 0.02)
            line = limitLine()
        }
        XCTAssertTrue(off(line), "core dumps are off: \(line ?? "no /proc limits for the CLI")")
    }

    func testKeygenPrintsA32ByteKeyEachTimeDifferent() throws {
        let first = try cli.run(["keygen"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let second = try cli.run(["keygen"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(Data(base64Encoded: first)?.count, 32)
        XCTAssertNotEqual(first, second)
    }

    func testFullWalkthrough() throws {
        XCTAssertEqual(try cli.run(["migrate"]).stdout, "applied migrations 1, 2, 3, 4, 5, 6\n")
        XCTAssertEqual(try cli.run(["migrate"]).stdout, "schema is up to date\n")

        let put = try cli.run(["put", "--client", "acme", "--provider", "zoho_crm"], stdin: response)
        XCTAssertEqual(put.status, 0, put.stderr)
        XCTAssertFalse(put.stdout.contains("1000."), "put must not echo tokens")
        XCTAssertEqual(
            put.stderr,
            "token-vault: note: not stored (metadata keeps only api_domain, token_type, in plaintext): id_token.\n",
            "a provider this command line refreshes needs no note; the dropped field is named, not shown")
        let typo = try cli.run(["put", "--client", "acme", "--provider", "zoho_crmm"], stdin: response)
        XCTAssertEqual(typo.status, 0, typo.stderr)
        XCTAssertTrue(typo.stderr.contains("refreshes only zoho_calendar, zoho_crm ("), typo.stderr)
        XCTAssertTrue(typo.stderr.contains("'zoho_crmm'") && typo.stderr.contains("token-vault delete"), typo.stderr)
        XCTAssertTrue(typo.stderr.contains("did you mean 'zoho_crm'?"), typo.stderr)
        XCTAssertEqual(try cli.run(["delete", "--client", "acme", "--provider", "zoho_crmm"]).status, 0)

        let token = try cli.run(["token", "--client", "acme", "--provider", "zoho_crm"])
        XCTAssertEqual(token.status, 0, token.stderr)
        XCTAssertEqual(token.stdout, "1000.ACCESS-e2e\n")

        let json = try cli.run(["token", "--client", "acme", "--provider", "zoho_crm", "--json"])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["access_token"] as? String, "1000.ACCESS-e2e")
        XCTAssertEqual((object["metadata"] as? [String: Any])?["api_domain"] as? String, "https://www.zohoapis.eu")
        XCTAssertNil((object["metadata"] as? [String: Any])?["id_token"], "credential-looking keys are dropped")
        XCTAssertNotNil(object["expires_at"])

        let list = try cli.run(["list"])
        XCTAssertTrue(list.stdout.contains("acme"))
        XCTAssertFalse(list.stdout.contains("1000."), "list shows no secrets")
        let listJSON = try cli.run(["list", "--json"])
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(listJSON.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.first?["client_id"] as? String, "acme")
        XCTAssertEqual((rows.first?["key_id"] as? String)?.count, 32)

        let verify = try cli.run(["verify"])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        XCTAssertTrue(verify.stdout.contains("1 row checked, 0 failing fields"), verify.stdout)

        let delete = try cli.run(["delete", "--client", "acme", "--provider", "zoho_crm"])
        XCTAssertEqual(delete.status, 0)
        let gone = try cli.run(["token", "--client", "acme", "--provider", "zoho_crm"])
        XCTAssertEqual(gone.status, 66)
        XCTAssertTrue(gone.stderr.hasPrefix("token-vault: error: no tokens are stored"), gone.stderr)
    }

    func testVerifyNamesFailingRowsAndExitsNonZero() async throws {
        _ = try cli.run(["migrate"])
        _ = try cli.run(["put", "--client", "acme", "--provider", "zoho_crm"], stdin: response)
        _ = try cli.run(["put", "--client", "beta", "--provider", "zoho_crm"], stdin: response)
        try await AdminSQL.execute(
            "UPDATE oauth_tokens SET access_token_ciphertext = set_byte(access_token_ciphertext, 5, 0) WHERE client_id = 'beta'",
            url: database.url)
        let verify = try cli.run(["verify"])
        XCTAssertEqual(verify.status, 1)
        XCTAssertTrue(
            verify.stdout.contains("FAIL client 'beta', provider 'zoho_crm', access_token: failed authentication"),
            verify.stdout)
        let json = try cli.run(["verify", "--json"])
        XCTAssertEqual(json.status, 1)
        let report = try JSONDecoder().decode(VerificationReport.self, from: Data(json.stdout.utf8))
        XCTAssertEqual(report.rows, 2)
        XCTAssertEqual(report.failures.count, 1)

        let otherKey = try cli.run(["verify"], extraEnvironment: ["TOKEN_VAULT_KEY": try cli.run(["keygen"]).stdout])
        XCTAssertEqual(otherKey.status, 1)
        XCTAssertTrue(otherKey.stdout.contains("unknown key id"), otherKey.stdout)
    }

    func testErrorsAreOneLineWithDocumentedExitCodes() throws {
        _ = try cli.run(["migrate"])
        let badJSON = try cli.run(["put", "--client", "a", "--provider", "p"], stdin: "not json")
        XCTAssertEqual(badJSON.status, 65)
        XCTAssertEqual(badJSON.stderr.split(separator: "\n").count, 1, badJSON.stderr)

        let noRefresh = try cli.run(["put", "--client", "a", "--provider", "p"], stdin: #"{"access_token":"x"}"#)
        XCTAssertEqual(noRefresh.status, 65)
        XCTAssertTrue(noRefresh.stderr.contains("no refresh_token"), noRefresh.stderr)

        let missingOption = try cli.run(["token", "--client", "a"])
        XCTAssertEqual(missingOption.status, 64)

        let badKey = try cli.run(["list"], extraEnvironment: ["TOKEN_VAULT_KEY": "c2hvcnQ="])
        XCTAssertEqual(badKey.status, 78)
        XCTAssertTrue(badKey.stderr.contains("decodes to 5 bytes, not 32"), badKey.stderr)
        XCTAssertFalse(badKey.stderr.contains("c2hvcnQ="))
        XCTAssertTrue(badKey.stderr.contains("token-vault keygen"))

        let noKey = try CLIRunner(databaseURL: database.url, key: nil).run(["verify"])
        XCTAssertEqual(noKey.status, 78)
        XCTAssertTrue(noKey.stderr.contains("TOKEN_VAULT_KEY_FILE"), noKey.stderr)

        var unreachable = cli!
        unreachable.environment["DATABASE_URL"] = "postgresql://u:pw-secret@/x?host=/nonexistent&connect_timeout=2"
        let down = try unreachable.run(["list"])
        XCTAssertEqual(down.status, 69)
        XCTAssertFalse(down.stderr.contains("pw-secret"), down.stderr)

        let expired = try cli.run(
            ["put", "--client", "old", "--provider", "p"],
            stdin: #"{"access_token":"x","refresh_token":"y","expires_in":60}"#)
        XCTAssertEqual(expired.status, 0)
        // Expired, and no token endpoint configured for "p": a configuration error that says what to set.
        let tooLate = try cli.run(["token", "--client", "old", "--provider", "p"])
        XCTAssertEqual(tooLate.status, 78)
        XCTAssertTrue(tooLate.stderr.contains("no token endpoint is configured for provider 'p'"), tooLate.stderr)
        XCTAssertFalse(tooLate.stdout.contains("x"))
    }

    /// put refuses such a token now; a row stored before (here through the library) must not be printed raw.
    func testTokenDoesNotPrintAStoredControlCharacter() async throws {
        _ = try cli.run(["migrate"])
        let key = try VaultKey(base64: try XCTUnwrap(cli.environment["TOKEN_VAULT_KEY"]))
        let vault = try Vault(
            configuration: VaultConfiguration(databaseURL: database.url, keyring: try Keyring(current: key)))
        try await vault.store(
            TokenSet(
                accessToken: Secret("1000.a\r\nX-Evil: 1"), refreshToken: Secret("1000.r"),
                expiresAt: Date().addingTimeInterval(3600)),
            client: "old", provider: "zoho_crm")
        await vault.shutdown()
        let plain = try cli.run(["token", "--client", "old", "--provider", "zoho_crm"])
        XCTAssertEqual(plain.status, 65, plain.stderr)
        XCTAssertEqual(plain.stdout, "")
        XCTAssertTrue(plain.stderr.contains("holds a control character"), plain.stderr)
        XCTAssertFalse(plain.stderr.contains("X-Evil"), "the token is not echoed")
        let json = try cli.run(["token", "--client", "old", "--provider", "zoho_crm", "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        XCTAssertTrue(json.stdout.contains(#"1000.a\r\nX-Evil: 1"#), "JSON escapes it")
    }

    func testKeyFileIsAccepted() throws {
        _ = try cli.run(["migrate"])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tv-test-\(UUID()).key-fixture").path
        let key = try XCTUnwrap(cli.environment["TOKEN_VAULT_KEY"])
        XCTAssertTrue(
            FileManager.default.createFile(
                atPath: path, contents: Data((key + "\n").utf8), attributes: [.posixPermissions: 0o400]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var fileCLI = cli!
        fileCLI.environment["TOKEN_VAULT_KEY"] = nil
        fileCLI.environment["TOKEN_VAULT_KEY_FILE"] = path
        _ = try cli.run(["put", "--client", "a", "--provider", "p"], stdin: response)
        let token = try fileCLI.run(["token", "--client", "a", "--provider", "p"])
        XCTAssertEqual(token.stdout, "1000.ACCESS-e2e\n", token.stderr)
        let both = try fileCLI.run(["list"], extraEnvironment: ["TOKEN_VAULT_KEY": key])
        XCTAssertEqual(both.status, 78)
        XCTAssertTrue(both.stderr.contains("set exactly one"), both.stderr)
    }

    func testConfigurationMistakesNeverEchoThePassword() throws {
        for url in ["postgresql://vault:HUNTER2%zzpw@localhost/vault", "host=localhost password=HUNTER2 pw"] {
            var broken = cli!
            broken.environment["DATABASE_URL"] = url
            let result = try broken.run(["list"])
            XCTAssertEqual(result.status, 78, result.stderr)
            XCTAssertTrue(result.stderr.contains("the database connection string is not valid"), result.stderr)
            XCTAssertTrue(result.stderr.contains("Check DATABASE_URL."), result.stderr)
            XCTAssertFalse(result.stderr.contains("HUNTER2"), result.stderr)
        }
        // An unknown option's name is a keyword, safe to repeat; the values around it are not.
        for url in ["host=localhost password=HUNTER2 sslmod=require", "postgresql://v:HUNTER2@localhost/v?sslmod=1"] {
            let result = try cli.run(["list"], extraEnvironment: ["DATABASE_URL": url])
            XCTAssertEqual(result.status, 78, result.stderr)
            XCTAssertTrue(result.stderr.contains("libpq has no option 'sslmod'"), result.stderr)
            XCTAssertFalse(result.stderr.contains("HUNTER2"), result.stderr)
        }
        let level = try cli.run(["list"], extraEnvironment: ["TOKEN_VAULT_LOG_LEVEL": "verbose"])
        XCTAssertEqual(level.status, 64)
        XCTAssertTrue(level.stderr.contains("TOKEN_VAULT_LOG_LEVEL must be one of"), level.stderr)
    }

    func testCommandsThatTouchNoSecretsRunWithoutAKey() throws {
        let keyless = CLIRunner(databaseURL: database.url, key: nil)
        XCTAssertEqual(try keyless.run(["migrate"]).status, 0)
        _ = try cli.run(["put", "--client", "a", "--provider", "p"], stdin: response)
        let list = try keyless.run(["list"])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertTrue(list.stdout.contains("1 row"), list.stdout)
        XCTAssertEqual(try keyless.run(["status", "--client", "a", "--provider", "p"]).status, 0)
        XCTAssertEqual(
            try keyless.run(["token", "--client", "a", "--provider", "p"]).status, 78, "opening needs the key")
        XCTAssertEqual(try keyless.run(["delete", "--client", "a", "--provider", "p"]).status, 0)
        let malformed = try keyless.run(["list"], extraEnvironment: ["TOKEN_VAULT_KEY": "bad"])
        XCTAssertEqual(malformed.status, 78, "a malformed key is still refused")
    }

    func testErrorsAreExactlyOneLineAtTheDefaultLogLevel() async throws {
        _ = try cli.run(["migrate"])
        _ = try cli.run(["put", "--client", "a", "--provider", "zoho_crm"], stdin: response)
        try await AdminSQL.execute(
            "UPDATE oauth_tokens SET access_token_ciphertext = set_byte(access_token_ciphertext, 5, 0)",
            url: database.url)
        let token = try cli.run(["token", "--client", "a", "--provider", "zoho_crm"])
        XCTAssertEqual(token.status, 65)
        XCTAssertEqual(token.stderr.split(separator: "\n").count, 1, token.stderr)
        let audit = try cli.run(
            ["token", "--client", "a", "--provider", "zoho_crm"], extraEnvironment: ["TOKEN_VAULT_LOG_LEVEL": "notice"])
        XCTAssertTrue(audit.stderr.contains("could not open a stored row"), "with a log level, an audit record")
        XCTAssertTrue(audit.stderr.contains("token_vault.key_id="), audit.stderr)
    }

    func testHelpShowsExamples() throws {
        let help = try cli.run(["--help"])
        XCTAssertTrue(help.stdout.contains("Quick start"), help.stdout)
        // Prose is wrapped by the terminal's width, not broken where the source line ended, and no example
        // is wider than 80 columns (a wrapped command line would run as two).
        for command in [
            "", "keygen", "migrate", "put", "exchange", "token", "status", "list", "delete", "verify",
            "rotate-key", "import", "bench",
        ] {
            let output = try cli.run(command.isEmpty ? ["--help"] : [command, "--help"]).stdout
            let long = output.split(separator: "\n").filter { $0.count > 80 && !$0.hasPrefix("USAGE:") }
            XCTAssertEqual(long, [], "\(command) --help: lines wider than 80 columns wrap badly")
        }
        XCTAssertTrue(
            try cli.run(["put", "--help"]).stdout.contains("refresh_token\n(required), expires_in (seconds;"),
            "a paragraph of put's help flows as one")
        for command in ["put", "token", "verify", "keygen"] {
            let sub = try cli.run([command, "--help"])
            XCTAssertTrue(sub.stdout.contains("Example"), "\(command): \(sub.stdout)")
        }
    }
}
