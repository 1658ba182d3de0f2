import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// `token` (refreshing), `exchange` and `status` through the built binary against a local token endpoint.
final class CLIRefreshTests: LocalZohoCLITestCase {
    override func setUp() async throws {
        try await super.setUp()
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)
    }

    func testExchangeThenTokenThenRefreshOnExpiry() throws {
        endpoint.addAuthorizationCode("1000.grant")
        let exchange = try cli.run(["exchange", "--client", "acme", "--provider", "zoho_crm"], stdin: "1000.grant\n")
        XCTAssertEqual(exchange.status, 0, exchange.stderr)
        XCTAssertTrue(exchange.stdout.contains("api_domain https://www.zohoapis.eu"), exchange.stdout)
        XCTAssertFalse(exchange.stdout.contains("1000.at-"), "exchange does not print tokens")

        let first = try cli.run(["token", "--client", "acme", "--provider", "zoho_crm"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(endpoint.requestCount, 1, "the exchanged token is valid: no refresh")

        // Expire it in the database; the next `token` refreshes.
        _ = try cli.run(
            ["put", "--client", "acme", "--provider", "zoho_crm"],
            stdin: #"{"access_token":"1000.old","refresh_token":"rt-cli","expires_in":10}"#)
        endpoint.addRefreshToken("rt-cli")
        let refreshed = try cli.run(["token", "--client", "acme", "--provider", "zoho_crm", "--json"])
        XCTAssertEqual(refreshed.status, 0, refreshed.stderr)
        XCTAssertFalse(refreshed.stdout.contains("1000.old"))
        XCTAssertTrue(refreshed.stdout.contains("\"api_domain\" : \"https://www.zohoapis.eu\""), refreshed.stdout)
        XCTAssertEqual(endpoint.requestCount, 2)

        let status = try cli.run(["status", "--client", "acme", "--provider", "zoho_crm"])
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertTrue(status.stdout.contains("needs re-authorization  no"), status.stdout)
        XCTAssertFalse(status.stdout.contains("1000."), "status shows no secrets")
    }

    func testRevokedRefreshTokenExits77AndStatusShowsIt() throws {
        _ = try cli.run(
            ["put", "--client", "acme", "--provider", "zoho_crm"],
            stdin: #"{"access_token":"1000.old","refresh_token":"rt-revoked","expires_in":10}"#)
        let token = try cli.run(["token", "--client", "acme", "--provider", "zoho_crm"])
        XCTAssertEqual(token.status, 77, token.stderr)
        XCTAssertTrue(token.stderr.contains("must authorize zoho_crm again"), token.stderr)
        XCTAssertFalse(token.stderr.contains("rt-revoked"))
        let status = try cli.run(["status", "--client", "acme", "--provider", "zoho_crm", "--json"])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["needs_reauthorization"] as? Bool, true)
        XCTAssertEqual(object["last_refresh_error"] as? String, "the provider refused the refresh token (invalid_code)")
    }

    func testExchangeRejectsEmptyInputAndBadCodes() throws {
        let empty = try cli.run(["exchange", "--client", "a", "--provider", "zoho_crm"], stdin: "")
        XCTAssertEqual(empty.status, 65)
        let bad = try cli.run(["exchange", "--client", "a", "--provider", "zoho_crm"], stdin: "1000.never-issued")
        XCTAssertEqual(bad.status, 77)
        XCTAssertFalse(bad.stderr.contains("never-issued"), bad.stderr)
    }
}
