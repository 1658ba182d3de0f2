import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// `token-vault keys`: key ids, their sources, rows per key, keys that can be retired and rows under unknown keys.
final class KeysCommandTests: XCTestCase {
    var database: TestDatabase!
    let keyA = VaultKey.generate()
    let keyB = VaultKey.generate()
    let keyC = VaultKey.generate()

    override func setUp() async throws {
        database = try await TestDatabase.create()
        let cli = CLIRunner(databaseURL: database.url, key: keyA.exportBase64())
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)
        let lines = (0..<3).map { #"{"client_id":"c-\#($0)","provider":"zoho_crm","refresh_token":"1000.r-\#($0)"}"# }
        let imported = try cli.run(["import"], stdin: lines.joined(separator: "\n") + "\n")
        XCTAssertEqual(imported.status, 0, imported.stderr)
    }

    override func tearDown() async throws {
        await database?.drop()
    }

    func keys(current: VaultKey, previous: [VaultKey]) throws -> (report: [String: Any], stderr: String) {
        var cli = CLIRunner(databaseURL: database.url, key: current.exportBase64())
        cli.environment[Keyring.Variable.previousKeys] = previous.map { $0.exportBase64() }.joined(separator: ",")
        let result = try cli.run(["keys", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        return (report, result.stderr)
    }

    func entries(_ report: [String: Any]) -> [String: [String: Any]] {
        let list = report["keys"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: list.map { ($0["id"] as? String ?? "", $0) })
    }

    func testRowsPerKeyRetirableKeysAndUnknownKeys() throws {
        let (report, stderr) = try keys(current: keyB, previous: [keyA, keyC])
        let byID = entries(report)
        XCTAssertEqual(byID[keyB.id.rawValue]?["role"] as? String, "current")
        XCTAssertEqual(byID[keyB.id.rawValue]?["source"] as? String, "TOKEN_VAULT_KEY")
        XCTAssertEqual(byID[keyB.id.rawValue]?["rows"] as? Int, 0)
        XCTAssertEqual(byID[keyA.id.rawValue]?["rows"] as? Int, 3)
        XCTAssertEqual(byID[keyA.id.rawValue]?["retirable"] as? Bool, false)
        XCTAssertEqual(byID[keyC.id.rawValue]?["source"] as? String, "entry 2 of TOKEN_VAULT_PREVIOUS_KEYS")
        XCTAssertEqual(report["retirable"] as? [String], [keyC.id.rawValue])
        XCTAssertTrue(stderr.contains("previous key \(keyC.id) holds no row any more"), stderr)
        XCTAssertFalse(stderr.contains(keyA.id.rawValue), stderr)
        // The import's audit events name key A: its first and last use; key B and key C sealed nothing yet.
        XCTAssertEqual(report["use_recorded"] as? Bool, true)
        XCTAssertNotNil(byID[keyA.id.rawValue]?["first_use"] as? String, "\(byID[keyA.id.rawValue] ?? [:])")
        XCTAssertNotNil(byID[keyA.id.rawValue]?["last_use"] as? String)
        XCTAssertTrue(byID[keyC.id.rawValue]?["first_use"] is NSNull, "no event names key C")

        let (unknown, _) = try keys(current: keyB, previous: [])
        let missing = entries(unknown)[keyA.id.rawValue]
        XCTAssertEqual(missing?["role"] as? String, "not configured")
        XCTAssertEqual(missing?["rows"] as? Int, 3)
        XCTAssertTrue(missing?["source"] is NSNull)

        var cli = CLIRunner(databaseURL: database.url, key: keyB.exportBase64())
        cli.environment[Keyring.Variable.previousKeys] = keyA.exportBase64()
        let text = try cli.run(["keys"])
        XCTAssertTrue(
            text.stdout.contains("previous       \(keyA.id)  3 rows  from entry 1 of TOKEN_VAULT_PREVIOUS_KEYS  used "),
            text.stdout)
        for key in [keyA, keyB, keyC] {
            XCTAssertFalse(text.stdout.contains(key.exportBase64()) || text.stderr.contains(key.exportBase64()))
        }
    }

    /// A previous key that no row uses but that authenticates audit events is not retirable: retiring it would
    /// leave those events unverifiable.
    func testAKeyThatAuthenticatesAuditEventsIsNotRetirable() throws {
        let deleting = CLIRunner(databaseURL: database.url, key: keyA.exportBase64())
        for index in 0..<3 {
            let deleted = try deleting.run(["delete", "--client", "c-\(index)", "--provider", "zoho_crm"])
            XCTAssertEqual(deleted.status, 0, deleted.stderr)
        }
        let (report, stderr) = try keys(current: keyB, previous: [keyA])
        let entryA = entries(report)[keyA.id.rawValue]
        XCTAssertEqual(entryA?["rows"] as? Int, 0)
        XCTAssertEqual(entryA?["retirable"] as? Bool, false)
        XCTAssertEqual(entryA?["audit_events"] as? Int, 7, "3 imported, the import's summary, 3 deleted")
        XCTAssertEqual(report["retirable"] as? [String], [])
        XCTAssertFalse(stderr.contains("can be retired"), stderr)
        var cli = CLIRunner(databaseURL: database.url, key: keyB.exportBase64())
        cli.environment[Keyring.Variable.previousKeys] = keyA.exportBase64()
        let text = try cli.run(["keys"])
        XCTAssertTrue(text.stdout.contains("audit events are authenticated under it"), text.stdout)
        let verify = try cli.run(["verify"])
        XCTAssertFalse(verify.stderr.contains("can be retired"), verify.stderr)
    }
}
