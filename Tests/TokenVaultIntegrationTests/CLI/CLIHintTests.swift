import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// The library's messages say what happened in its own terms; the CLI adds what to do in its terms (environment
/// variables, commands), keyed on the error's code.
final class CLIHintTests: LocalZohoCLITestCase {

    func testEachFailureGetsTheCLIsHintOnTheSameLine() throws {
        let unmigrated = try cli.run(["list"])
        XCTAssertEqual(unmigrated.status, 78, unmigrated.stderr)
        XCTAssertTrue(unmigrated.stderr.contains("Run `token-vault migrate` first."), unmigrated.stderr)
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)

        let missing = try cli.run(["token", "--client", "ghost", "--provider", "zoho_crm"])
        XCTAssertEqual(missing.status, 66, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("`token-vault put --client … --provider …`"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains("ZOHO_REFRESH_TOKEN"), missing.stderr)

        var unconfigured = cli!
        unconfigured.environment["ZOHO_CLIENT_ID"] = nil
        unconfigured.environment["ZOHO_CLIENT_SECRET"] = nil
        let put = try unconfigured.run(
            ["put", "--client", "a", "--provider", "zoho_crm"],
            stdin: #"{"access_token":"at","refresh_token":"rt","expires_in":0}"#)
        XCTAssertEqual(put.status, 0, put.stderr)
        let noProvider = try unconfigured.run(["token", "--client", "a", "--provider", "zoho_crm"])
        XCTAssertEqual(noProvider.status, 78, noProvider.stderr)
        XCTAssertTrue(noProvider.stderr.contains("register an OAuthProvider"), noProvider.stderr)
        XCTAssertTrue(noProvider.stderr.contains("from ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET"), noProvider.stderr)

        let refused = try cli.run(
            ["exchange", "--client", "b", "--provider", "zoho_crm"], stdin: "1000.never-issued\n")
        XCTAssertEqual(refused.status, 77, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("Generate a new grant token (Zoho API console"), refused.stderr)

        let valid = try cli.run(
            ["put", "--client", "k", "--provider", "zoho_crm"],
            stdin: #"{"access_token":"at","refresh_token":"rt","expires_in":3600}"#)
        XCTAssertEqual(valid.status, 0, valid.stderr)
        let otherKey = try CLIRunner(databaseURL: database.url, key: VaultKey.generate().exportBase64())
            .run(["token", "--client", "k", "--provider", "zoho_crm"])
        XCTAssertEqual(otherKey.status, 78, otherKey.stderr)
        XCTAssertTrue(otherKey.stderr.contains("add that key to the keyring's previous keys."), otherKey.stderr)
        XCTAssertTrue(otherKey.stderr.contains("previous keys come from TOKEN_VAULT_PREVIOUS_KEYS"), otherKey.stderr)

        for result in [unmigrated, missing, noProvider, refused, otherKey] {
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        }
    }
}
