import Foundation
import XCTest

@testable import TokenVault

/// The client secret can come from a file instead of the process environment, under the key files' rules.
final class ClientSecretFileTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("secret-file-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    private func write(_ contents: String, mode: Int16) throws -> String {
        let path = folder.appendingPathComponent("client-secret").path
        try? FileManager.default.removeItem(atPath: path)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(contents.utf8)))
        XCTAssertEqual(chmod(path, mode_t(mode)), 0)
        return path
    }

    func testTheSecretIsReadFromTheFile() throws {
        let path = try write("  zoho-client-secret-42\n", mode: 0o600)
        let providers = try OAuthProvider.zohoFromEnvironment([
            "ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET_FILE": path,
        ])
        XCTAssertEqual(
            providers.map(\.clientSecret), [Secret("zoho-client-secret-42"), Secret("zoho-client-secret-42")])
    }

    func testMistakesAreRefusedWithoutEchoingTheSecret() throws {
        let secret = "zoho-client-secret-42"
        let readable = try write(secret, mode: 0o644)
        let cases: [([String: String], String)] = [
            (
                ["ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET_FILE": readable],
                "other users could read or change the secret"
            ),
            (
                ["ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET": secret, "ZOHO_CLIENT_SECRET_FILE": readable],
                "set exactly one"
            ),
            (["ZOHO_CLIENT_SECRET_FILE": readable], "ZOHO_CLIENT_SECRET_FILE is set but ZOHO_CLIENT_ID is not"),
            (["ZOHO_CLIENT_ID": "1000.X"], "neither ZOHO_CLIENT_SECRET nor ZOHO_CLIENT_SECRET_FILE"),
            (
                ["ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET_FILE": folder.appendingPathComponent("missing").path],
                "cannot read"
            ),
        ]
        for (environment, expected) in cases {
            XCTAssertThrowsError(try OAuthProvider.zohoFromEnvironment(environment), expected) { error in
                XCTAssertEqual((error as? VaultError)?.code, .providerConfiguration, "\(error)")
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
                XCTAssertFalse("\(error)".contains(secret), "\(error)")
            }
        }
        let empty = try write(" \n", mode: 0o600)
        XCTAssertThrowsError(
            try OAuthProvider.zohoFromEnvironment(["ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET_FILE": empty])
        ) { error in XCTAssertTrue("\(error)".contains("is empty"), "\(error)") }
    }
}
