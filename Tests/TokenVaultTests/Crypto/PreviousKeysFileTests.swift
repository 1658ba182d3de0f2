import Foundation
import TokenVault
import XCTest

final class CryptoPreviousKeysFileTests: XCTestCase {
    func testPreviousKeysFromAFileOnePerLine() throws {
        let current = VaultKey.generate()
        let old1 = VaultKey.generate()
        let old2 = VaultKey.generate()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("prev-\(UUID()).keys-fixture").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "# retired 2026-01\n\(old1.exportBase64())\n\n  \(old2.exportBase64())  \r\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        let keyring = try Keyring.fromEnvironment([
            "TOKEN_VAULT_KEY": current.exportBase64(), "TOKEN_VAULT_PREVIOUS_KEYS_FILE": path,
        ])
        XCTAssertEqual(keyring.keyIDs, [current.id, old1.id, old2.id])
    }

    func testABadLineIsNamedWithoutItsContent() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("prev-\(UUID()).keys-fixture").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "\(VaultKey.generate().exportBase64())\nc2VjcmV0LXNob3J0\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        XCTAssertThrowsError(
            try Keyring.fromEnvironment([
                "TOKEN_VAULT_KEY": VaultKey.generate().exportBase64(), "TOKEN_VAULT_PREVIOUS_KEYS_FILE": path,
            ])
        ) { error in
            let message = (error as? VaultError)?.message ?? ""
            XCTAssertTrue(message.contains("line 2 of TOKEN_VAULT_PREVIOUS_KEYS_FILE"), message)
            XCTAssertFalse(message.contains("c2VjcmV0LXNob3J0"))
        }
        XCTAssertThrowsError(
            try Keyring.fromEnvironment([
                "TOKEN_VAULT_KEY": VaultKey.generate().exportBase64(),
                "TOKEN_VAULT_PREVIOUS_KEYS_FILE": "/nonexistent/keys",
            ]))
    }

    func testAFileTooLargeForKeysIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("prev-\(UUID()).keys-fixture").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try String(repeating: "#\n", count: 40_000).write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        XCTAssertThrowsError(
            try Keyring.fromEnvironment([
                "TOKEN_VAULT_KEY": VaultKey.generate().exportBase64(), "TOKEN_VAULT_PREVIOUS_KEYS_FILE": path,
            ])
        ) { error in
            let message = (error as? VaultError)?.message ?? ""
            XCTAssertTrue(message.contains("holds 64 KiB or more; it must hold only base64 keys"), message)
        }
    }

    func testAFileOthersCanReadIsRefused() throws {
        let old = VaultKey.generate()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("prev-\(UUID()).keys-fixture").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "\(old.exportBase64())\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        XCTAssertThrowsError(
            try Keyring.fromEnvironment([
                "TOKEN_VAULT_KEY": VaultKey.generate().exportBase64(), "TOKEN_VAULT_PREVIOUS_KEYS_FILE": path,
            ])
        ) { error in
            let message = (error as? VaultError)?.message ?? ""
            XCTAssertEqual((error as? VaultError)?.code, .keyConfiguration)
            XCTAssertTrue(message.contains("TOKEN_VAULT_PREVIOUS_KEYS_FILE (\(path)) has mode 0644"), message)
            XCTAssertFalse(message.contains(old.exportBase64()), message)
        }
    }
}
