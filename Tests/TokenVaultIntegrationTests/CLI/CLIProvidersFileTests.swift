import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// A provider that is not Zoho, from TOKEN_VAULT_PROVIDERS_FILE, through every command that talks to it: an
/// RFC 6749 endpoint with HTTP Basic client authentication, space-separated scopes and rotating refresh tokens.
final class CLIProvidersFileTests: XCTestCase {
    var database: TestDatabase!
    var idp: FakeTokenEndpoint!
    var cli: CLIRunner!
    var directory: URL!

    override func setUp() async throws {
        database = try await TestDatabase.create()
        idp = try FakeTokenEndpoint.start(rotation: .rotating, clientID: "idp-client", clientSecret: "idp-secret")
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-providers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("providers.json").path
        try """
        {
          "providers": [
            {
              "name": "acme_idp",
              "token_url": "\(idp.tokenURL.absoluteString)",
              "authorization_url": "\(idp.authorizationURL.absoluteString)",
              "revocation_url": "\(idp.revocationURL.absoluteString)",
              "client_id": "idp-client",
              "client_secret_env": "ACME_IDP_SECRET",
              "client_authentication": "basic",
              "authorization_parameters": {"access_type": "offline"},
              "metadata_fields": ["token_type"]
            }
          ]
        }
        """.write(toFile: file, atomically: false, encoding: .utf8)
        cli = CLIRunner(databaseURL: database.url, key: VaultKey.generate().exportBase64())
        cli.environment["TOKEN_VAULT_PROVIDERS_FILE"] = file
        cli.environment["ACME_IDP_SECRET"] = "idp-secret"
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)
    }

    override func tearDown() async throws {
        idp.stop()
        try? FileManager.default.removeItem(at: directory)
        await database.drop()
    }

    func testAuthorizeCallbackTokenAndRevokeWithAnyProvider() async throws {
        let authorize = try cli.run([
            "authorize", "--client", "acme", "--provider", "acme_idp", "--redirect-uri", "http://127.0.0.1:9/cb",
            "--scope", "openid", "--scope", "offline_access",
        ])
        XCTAssertEqual(authorize.status, 0, authorize.stderr)
        let url = try XCTUnwrap(URL(string: authorize.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertTrue(url.absoluteString.contains("scope=openid%20offline_access"), "\(url)")
        XCTAssertTrue(url.absoluteString.contains("access_type=offline"), "\(url)")
        XCTAssertFalse(url.absoluteString.contains("prompt="), "Zoho's parameters are Zoho's")

        let callback = try cli.run(["callback", "--provider", "acme_idp"], stdin: try idp.approve(url).absoluteString)
        XCTAssertEqual(callback.status, 0, callback.stderr)
        let exchange = try XCTUnwrap(idp.receivedRequests.first { $0.form["grant_type"] == "authorization_code" })
        XCTAssertTrue(exchange.usedBasicAuthentication)
        XCTAssertNil(exchange.form["client_secret"], "HTTP Basic: the secret is not in the body")

        _ = try await AdminSQL.query(
            "UPDATE oauth_tokens SET token_expiry = now() - interval '1 minute'", url: database.url)
        let token = try cli.run(["token", "--client", "acme", "--provider", "acme_idp"])
        XCTAssertEqual(token.status, 0, token.stderr)
        XCTAssertEqual(idp.receivedRequests.filter { $0.form["grant_type"] == "refresh_token" }.count, 1)

        let revoke = try cli.run(["delete", "--client", "acme", "--provider", "acme_idp", "--revoke"])
        XCTAssertEqual(revoke.status, 0, revoke.stderr)
        XCTAssertEqual(idp.revocationCount, 1, "the rotated refresh token, the one stored, was revoked")
        let sent = try XCTUnwrap(idp.receivedRequests.last)
        XCTAssertNil(sent.query["token"], "RFC 7009: the token only in the body")
    }

    func testPutKnowsTheFilesProviders() throws {
        let put = try cli.run(
            ["put", "--client", "acme", "--provider", "acme_idp"], stdin: #"{"access_token":"a","refresh_token":"r"}"#)
        XCTAssertEqual(put.status, 0, put.stderr)
        XCTAssertFalse(put.stderr.contains("refreshes only"), put.stderr)
    }

    func testAMistakeInTheFileIsReportedWithItsLine() throws {
        let file = directory.appendingPathComponent("broken.json").path
        try
            "{\n  \"providers\": [\n    {\"name\": \"x\", \"token_url\": \"ftp://x\", \"client_id\": \"i\", \"client_secret_env\": \"ACME_IDP_SECRET\"}\n  ]\n}"
            .write(toFile: file, atomically: false, encoding: .utf8)
        let out = try cli.run(["list"], extraEnvironment: ["TOKEN_VAULT_PROVIDERS_FILE": file])
        XCTAssertEqual(out.status, 78, out.stderr)
        XCTAssertTrue(out.stderr.contains("line 3: \"token_url\" must be an https URL"), out.stderr)
        XCTAssertTrue(out.stderr.contains("docs/connecting.md"), out.stderr)
    }
}
