import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// `authorize`, `callback`, `exchange --data-center` and `delete --revoke` through the built binary, against two
/// local endpoints playing Zoho's US (the default, ZOHO_ACCOUNTS_URL) and EU (ZOHO_ACCOUNTS_URL_EU) servers.
final class CLIConnectTests: XCTestCase {
    var database: TestDatabase!
    var us: FakeTokenEndpoint!
    var eu: FakeTokenEndpoint!
    var cli: CLIRunner!
    let redirect = "https://app.example/oauth/callback"

    override func setUp() async throws {
        database = try await TestDatabase.create()
        us = try FakeTokenEndpoint.start(location: "us")
        eu = try FakeTokenEndpoint.start(location: "eu")
        cli = CLIRunner(databaseURL: database.url, zohoAt: us)
        cli.environment["ZOHO_ACCOUNTS_URL_EU"] = eu.baseURL.absoluteString
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)
    }

    override func tearDown() async throws {
        us.stop()
        eu.stop()
        await database.drop()
    }

    func authorize(_ client: String) throws -> URL {
        let out = try cli.run([
            "authorize", "--client", client, "--provider", "zoho_crm", "--redirect-uri", redirect, "--scope",
            "ZohoCRM.modules.ALL", "--scope", "ZohoCRM.users.READ",
        ])
        XCTAssertEqual(out.status, 0, out.stderr)
        return try XCTUnwrap(URL(string: out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    func testConnectTwoDataCentresRefreshEachAtItsOwnAndRevokeOne() async throws {
        let usURL = try authorize("us-customer")
        XCTAssertTrue(usURL.absoluteString.contains("scope=ZohoCRM.modules.ALL%2CZohoCRM.users.READ"), "\(usURL)")
        let usCallback = try cli.run(["callback"], stdin: try us.approve(usURL).absoluteString + "\n")
        XCTAssertEqual(usCallback.status, 0, usCallback.stderr)
        XCTAssertTrue(usCallback.stdout.contains("client 'us-customer'"), usCallback.stdout)

        // The EU customer starts at the default (US) server and lands at the EU one, as with Zoho.
        let euCallbackURL = try eu.approve(try authorize("eu-customer"))
        let query = try XCTUnwrap(euCallbackURL.query)
        let euCallback = try cli.run(["callback", "--client", "eu-customer"], stdin: query)  // the query alone
        XCTAssertEqual(euCallback.status, 0, euCallback.stderr)
        XCTAssertTrue(euCallback.stdout.contains("accounts server \(eu.baseURL.absoluteString)"), euCallback.stdout)
        XCTAssertFalse(euCallback.stdout.contains("1000."), "no token or code printed")

        let replay = try cli.run(["callback"], stdin: euCallbackURL.absoluteString)
        XCTAssertEqual(replay.status, 65, replay.stderr)
        XCTAssertTrue(replay.stderr.contains("already completed"), replay.stderr)
        XCTAssertFalse(replay.stderr.contains(query), "the error quotes neither code nor state")

        _ = try await AdminSQL.query(
            "UPDATE oauth_tokens SET token_expiry = now() - interval '1 minute'", url: database.url)
        for client in ["us-customer", "eu-customer"] {
            let token = try cli.run(["token", "--client", client, "--provider", "zoho_crm"])
            XCTAssertEqual(token.status, 0, token.stderr)
        }
        XCTAssertEqual(us.receivedRequests.filter { $0.form["grant_type"] == "refresh_token" }.count, 1)
        XCTAssertEqual(eu.receivedRequests.filter { $0.form["grant_type"] == "refresh_token" }.count, 1)

        let status = try cli.run(["status", "--client", "eu-customer", "--provider", "zoho_crm"])
        XCTAssertTrue(status.stdout.contains("accounts server         \(eu.baseURL.absoluteString)"), status.stdout)
        let revoke = try cli.run(["delete", "--client", "eu-customer", "--provider", "zoho_crm", "--revoke"])
        XCTAssertEqual(revoke.status, 0, revoke.stderr)
        XCTAssertTrue(revoke.stdout.contains("revoked and deleted"), revoke.stdout)
        XCTAssertEqual(eu.revocationCount, 1)
        XCTAssertEqual(us.revocationCount, 0)
    }

    func testATamperedAccountsServerIsRefusedAndNothingIsSentThere() throws {
        let attacker = try FakeTokenEndpoint.start(location: "eu")
        defer { attacker.stop() }
        let honest = try eu.approve(try authorize("acme")).absoluteString
        let tampered = honest.replacingOccurrences(
            of: "accounts-server=\(eu.baseURL.absoluteString)",
            with: "accounts-server=\(attacker.baseURL.absoluteString)")
        XCTAssertNotEqual(tampered, honest)
        let refused = try cli.run(["callback"], stdin: tampered)
        XCTAssertEqual(refused.status, 65, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("not one that provider 'zoho_crm' trusts"), refused.stderr)
        XCTAssertTrue(attacker.receivedRequests.isEmpty)
        let completed = try cli.run(["callback"], stdin: honest)
        XCTAssertEqual(completed.status, 0, completed.stderr)
    }

    func testADeclinedConsentAndAMismatchedClient() throws {
        us.denyNextAuthorization()
        let denied = try cli.run(["callback"], stdin: try us.approve(try authorize("acme")).absoluteString)
        XCTAssertEqual(denied.status, 77, denied.stderr)
        XCTAssertTrue(denied.stderr.contains("declined"), denied.stderr)
        let callback = try us.approve(try authorize("acme")).absoluteString
        let mismatch = try cli.run(["callback", "--client", "other"], stdin: callback)
        XCTAssertEqual(mismatch.status, 65, mismatch.stderr)
        let empty = try cli.run(["callback"], stdin: "")
        XCTAssertEqual(empty.status, 65, empty.stderr)
    }

    func testExchangeAtADataCentreAndRevocationFailuresKeepTheRowUnlessForced() throws {
        eu.addAuthorizationCode("1000.grant-eu")
        let exchange = try cli.run(
            ["exchange", "--client", "acme", "--provider", "zoho_crm", "--data-center", "eu"], stdin: "1000.grant-eu\n")
        XCTAssertEqual(exchange.status, 0, exchange.stderr)
        let hostile = try cli.run(
            ["exchange", "--client", "b", "--provider", "zoho_crm", "--accounts-server", "https://evil.example"],
            stdin: "1000.x\n")
        XCTAssertEqual(hostile.status, 65, hostile.stderr)

        eu.enqueue(.status(503), .status(503), .status(503))
        let failed = try cli.run(["delete", "--client", "acme", "--provider", "zoho_crm", "--revoke"])
        XCTAssertEqual(failed.status, 69, failed.stderr)
        XCTAssertTrue(failed.stderr.contains("The tokens were kept"), failed.stderr)
        XCTAssertEqual(try cli.run(["status", "--client", "acme", "--provider", "zoho_crm"]).status, 0)

        eu.stop()
        let forced = try cli.run(["delete", "--client", "acme", "--provider", "zoho_crm", "--revoke", "--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertTrue(forced.stderr.contains("may still be live"), forced.stderr)
        XCTAssertEqual(try cli.run(["status", "--client", "acme", "--provider", "zoho_crm"]).status, 66)
        XCTAssertEqual(try cli.run(["delete", "--client", "a", "--provider", "zoho_crm", "--force"]).status, 64)
    }
}
