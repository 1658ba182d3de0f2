import Foundation
import TokenVault
import TokenVaultCommandSupport
import TokenVaultTesting
import XCTest

/// Every command of the built binary through PgBouncer in transaction pooling mode (started by the tests, two
/// server connections per database handed out in turn), with `TOKEN_VAULT_PREPARED_STATEMENTS=off` and with the
/// default, where the vault detects the pooler itself.
final class CLIPgBouncerTests: XCTestCase {
    var database: TestDatabase!
    var endpoint: FakeTokenEndpoint!

    override func setUp() async throws {
        database = try await TestDatabase.create()
        endpoint = try FakeTokenEndpoint.start()
    }

    override func tearDown() async throws {
        endpoint.stop()
        await database.drop()
    }

    func ndjson(_ count: Int) -> String {
        (0..<count).map { index in
            #"{"client_id":"c-\#(index)","provider":"zoho_crm","access_token":"1000.access-\#(index)","#
                + #""refresh_token":"1000.refresh-\#(index)","expires_in":3600,"api_domain":"https://www.zohoapis.eu"}"#
        }.joined(separator: "\n") + "\n"
    }

    func testEveryCommandWithUnnamedStatements() async throws {
        try await walkThroughEveryCommand(extraEnvironment: ["TOKEN_VAULT_PREPARED_STATEMENTS": "off"])
    }

    func testEveryCommandWhenTheVaultDetectsThePooler() async throws {
        try await walkThroughEveryCommand(extraEnvironment: [:])
    }

    private func walkThroughEveryCommand(extraEnvironment: [String: String]) async throws {
        var cli = CLIRunner(databaseURL: try SharedPgBouncer.url(database: database.name), zohoAt: endpoint)
        cli.environment.merge(extraEnvironment) { $1 }
        func run(_ arguments: [String], stdin: String = "", status: Int32 = 0) throws -> CLIRunner.Output {
            let output = try cli.run(arguments, stdin: stdin)
            XCTAssertEqual(output.status, status, "\(arguments): \(output.stderr)")
            XCTAssertFalse(output.stderr.contains("prepared statement"), "\(arguments): \(output.stderr)")
            return output
        }

        XCTAssertTrue(try run(["migrate"]).stdout.hasPrefix("applied migrations 1, 2"))
        XCTAssertEqual(try run(["migrate"]).stdout, "schema is up to date\n")

        endpoint.addAuthorizationCode("1000.grant")
        _ = try run(["exchange", "--client", "acme", "--provider", "zoho_crm"], stdin: "1000.grant\n")
        let response = #"{"access_token":"1000.ACCESS-pgb","refresh_token":"rt-pgb","expires_in":3600}"#
        _ = try run(["put", "--client", "beta", "--provider", "zoho_crm"], stdin: response)
        XCTAssertEqual(try run(["token", "--client", "beta", "--provider", "zoho_crm"]).stdout, "1000.ACCESS-pgb\n")
        XCTAssertTrue(
            try run(["token", "--client", "acme", "--provider", "zoho_crm", "--json"]).stdout.contains("1000."))

        // An expired token is refreshed through the pooler (the refresh holds a transaction and its lock).
        endpoint.addRefreshToken("rt-expired")
        _ = try run(
            ["put", "--client", "gamma", "--provider", "zoho_crm"],
            stdin: #"{"access_token":"1000.old","refresh_token":"rt-expired","expires_in":10}"#)
        let refreshed = try run(["token", "--client", "gamma", "--provider", "zoho_crm"])
        XCTAssertNotEqual(refreshed.stdout, "1000.old\n")
        XCTAssertEqual(endpoint.requestCount, 2, "the exchange and one refresh")
        XCTAssertTrue(
            try run(["status", "--client", "gamma", "--provider", "zoho_crm"]).stdout.contains(
                "needs re-authorization  no"))

        let imported = try run(["import", "--batch-size", "100"], stdin: ndjson(450))
        XCTAssertTrue(imported.stdout.hasPrefix("imported 450 rows"), imported.stdout)
        XCTAssertTrue(try run(["list"]).stdout.contains("c-449"))
        let rows = try JSONSerialization.jsonObject(with: Data(try run(["list", "--json"]).stdout.utf8)) as? [Any]
        XCTAssertEqual(rows?.count, 453)
        XCTAssertTrue(try run(["verify"]).stdout.contains("453 rows checked, 0 failing fields"))

        let oldKey = try XCTUnwrap(cli.environment["TOKEN_VAULT_KEY"])
        cli.environment["TOKEN_VAULT_KEY"] = VaultKey.generate().exportBase64()
        cli.environment["TOKEN_VAULT_PREVIOUS_KEYS"] = oldKey
        let rotated = try run(["rotate-key", "--batch-size", "100"])
        XCTAssertTrue(rotated.stdout.contains("re-sealed 453 rows"), rotated.stdout)
        cli.environment["TOKEN_VAULT_PREVIOUS_KEYS"] = nil
        XCTAssertTrue(try run(["verify"]).stdout.contains("453 rows checked, 0 failing fields"))

        _ = try run(["delete", "--client", "beta", "--provider", "zoho_crm"])
        _ = try run(["token", "--client", "beta", "--provider", "zoho_crm"], status: 66)
    }

    /// A pooler's failure that reached the operator (a transaction the vault could not run again) names the variable.
    func testAPoolersFailureGetsTheVariableAsHint() {
        for sqlState in ["26000", "42P05"] {
            let hint = CLI.hint(for: VaultError(.database, "a named prepared statement failed", sqlState: sqlState))
            XCTAssertEqual(
                hint,
                "Behind a connection pooler in transaction mode (PgBouncer, RDS Proxy), set "
                    + "TOKEN_VAULT_PREPARED_STATEMENTS=off.")
        }
        XCTAssertNil(CLI.hint(for: VaultError(.database, "syntax", sqlState: "42601")))
    }
}
