import Foundation
import TokenVault
import XCTest

final class CryptoPreviousKeysFileTests: XCTestCase {
    /// A TOKEN_VAULT_PREVIOUS_KEYS_FILE holding `contents`, removed when the test ends.
    private func keysFile(_ contents: String, mode: Int = 0o600) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("prev-\(UUID()).keys-fixture").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    /// The keyring from `path` as the previous keys' file, beside `current` (a fresh key unless given).
    private func keyring(previousKeysFile path: String, current: VaultKey = .generate()) throws -> Keyring {
        try Keyring.fromEnvironment([
            "TOKEN_VAULT_KEY": current.exportBase64(), "TOKEN_VAULT_PREVIOUS_KEYS_FILE": path,
        ])
    }

    func testPreviousKeysFromAFileOnePerLine() throws {
        let current = VaultKey.generate()
        let old1 = VaultKey.generate()
        let old2 = VaultKey.generate()
        let path = try keysFile("# retired 2026-01\n\(old1.exportBase64())\n\n  \(old2.exportBase64())  \r\n")
        XCTAssertEqual(try keyring(previousKeysFile: path, current: current).keyIDs, [current.id, old1.id, old2.id])
    }

    func testABadLineIsNamedWithoutItsContent() throws {
        let path = try keysFile("\(VaultKey.generate().exportBase64())\nc2VjcmV0LXNob3J0\n")
        XCTAssertThrowsError(try keyring(previousKeysFile: path)) { error in
            let message = (error as? VaultError)?.message ?? ""
            XCTAssertTrue(message.contains("line 2 of TOKEN_VAULT_PREVIOUS_KEYS_FILE"), message)
            XCTAssertFalse(message.contains("c2VjcmV0LXNob3J0"))
        }
        XCTAssertThrowsError(try keyring(previousKeysFile: "/nonexistent/keys"))
    }

    func testAFileTooLargeForKeysIsRefused() throws {
        let path = try keysFile(String(repeating: "#\n", count: 40_000))
        XCTAssertThrowsError(try keyring(previousKeysFile: path)) { error in
            let message = (error as? VaultError)?.message ?? ""
            XCTAssertTrue(message.contains("holds 64 KiB or more; it must hold only base64 keys"), message)
        }
    }

    func testAFileOthersCanReadIsRefused() throws {
        let old = VaultKey.generate()
        let path = try keysFile("\(old.exportBase64())\n", mode: 0o644)
        XCTAssertThrowsError(try keyring(previousKeysFile: path)) { error in
            let message = (error as? VaultError)?.message ?? ""
            XCTAssertEqual((error as? VaultError)?.code, .keyConfiguration)
            XCTAssertTrue(message.contains("TOKEN_VAULT_PREVIOUS_KEYS_FILE (\(path)) has mode 0644"), message)
            XCTAssertFalse(message.contains(old.exportBase64()), message)
        }
    }
}
