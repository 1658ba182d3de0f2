import Foundation
import XCTest

@testable import TokenVault

#if canImport(Glibc)
import Glibc
#endif

/// TOKEN_VAULT_KEY_FILE: the preferred way to pass a key, and every way the file can be wrong.
final class CryptoKeyFileTests: XCTestCase {
    private let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  // public test key A
    private let keyID = "ea7aa2a68d2ab3c9c8e24a45f4828f35"
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("crypto-keyfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: folder.path)
        try FileManager.default.removeItem(at: folder)
    }

    private func write(_ contents: String, name: String = "token-vault.key") throws -> String {
        let url = folder.appendingPathComponent(name)
        try Data(contents.utf8).write(to: url)
        return url.path
    }

    func testAKeyFileWithSurroundingWhitespaceWorks() throws {
        for contents in [key, "\(key)\n", "\(key)\r\n", "  \(key)\t\n\n"] {
            let path = try write(contents)
            XCTAssertEqual(try VaultKey(contentsOfFile: path).id.rawValue, keyID)
            XCTAssertEqual(try Keyring.fromEnvironment(["TOKEN_VAULT_KEY_FILE": path]).current.id.rawValue, keyID)
        }
    }

    func testAMissingFileIsNamed() {
        let path = folder.appendingPathComponent("missing.key").path
        CryptoAssert.throwsVaultError(
            .keyConfiguration,
            mentioning: ["TOKEN_VAULT_KEY_FILE", path, "No such file or directory", "Check the path"]
        ) { try Keyring.fromEnvironment(["TOKEN_VAULT_KEY_FILE": path]) }
    }

    func testAnUnreadableFileIsReported() throws {
        if geteuid() == 0 {
            // Root reads files whatever their mode; /proc/self/mem opens but fails to read at offset 0.
            CryptoAssert.throwsVaultError(
                .keyConfiguration, mentioning: ["TOKEN_VAULT_KEY_FILE", "/proc/self/mem", "cannot read"]
            ) { try VaultKey(contentsOfFile: "/proc/self/mem") }
            return
        }
        let path = try write("\(key)\n")
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: path)
        CryptoAssert.throwsVaultError(
            .keyConfiguration, mentioning: ["TOKEN_VAULT_KEY_FILE", path, "Permission denied"], secrets: [key]
        ) { try VaultKey(contentsOfFile: path) }
    }

    /// A path that opens but cannot be read (a directory, e.g. a secret mounted one level too high) must be
    /// reported as unreadable, not as an empty key file.
    func testAFileThatCannotBeReadIsNotReportedAsEmpty() {
        let error = CryptoAssert.throwsVaultError(.keyConfiguration, mentioning: [folder.path]) {
            try VaultKey(contentsOfFile: folder.path)
        }
        XCTAssertFalse(error?.message.contains("is empty") ?? true, error?.message ?? "")
    }

    func testATooLargeFileIsRefused() throws {
        for contents in [String(repeating: "A", count: 5000), key + String(repeating: " ", count: 4096)] {
            let path = try write(contents)
            CryptoAssert.throwsVaultError(
                .keyConfiguration, mentioning: [path, "larger than a key", "only the base64 key"], secrets: [key]
            ) { try VaultKey(contentsOfFile: path) }
        }
    }

    func testBadContentsAreRefusedWithoutEchoingThem() throws {
        let cases = [
            ("", "is empty"), ("\n", "is empty"), ("not base64!!\n", "is not valid standard base64"),
            (Data(repeating: 7, count: 33).base64EncodedString(), "decodes to 33 bytes, not 32"),
            (key + "\n" + key + "\n", "is not valid standard base64"),
        ]
        for (contents, problem) in cases {
            let path = try write(contents)
            CryptoAssert.throwsVaultError(
                .keyConfiguration, mentioning: ["TOKEN_VAULT_KEY_FILE", path, problem, "keygen"],
                secrets: contents.split(whereSeparator: \.isNewline).map(String.init)
            ) { try Keyring.fromEnvironment(["TOKEN_VAULT_KEY_FILE": path]) }
        }
    }
}
