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

    private func write(_ contents: String, name: String = "token-vault.key", mode: Int = 0o600) throws -> String {
        let url = folder.appendingPathComponent(name)
        try Data(contents.utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
        return url.path
    }

    func testAKeyFileOthersCouldReadOrChangeIsRefused() throws {
        // Files a test writes belong to the user running it; root's may give its group read access.
        let refused = geteuid() == 0 ? [0o644, 0o604, 0o660, 0o650, 0o666] : [0o644, 0o640, 0o604, 0o620, 0o666]
        for mode in refused {
            let path = try write("\(key)\n", mode: mode)
            CryptoAssert.throwsVaultError(
                .keyConfiguration,
                mentioning: ["TOKEN_VAULT_KEY_FILE", path, "has mode 0\(String(mode, radix: 8))", "chmod 600"],
                secrets: [key]
            ) { try Keyring.fromEnvironment(["TOKEN_VAULT_KEY_FILE": path]) }
        }
        let allowed = geteuid() == 0 ? [0o600, 0o400, 0o640, 0o440] : [0o600, 0o400]
        for mode in allowed {
            XCTAssertEqual(try VaultKey(contentsOfFile: try write("\(key)\n", mode: mode)).id.rawValue, keyID)
        }
    }

    func testAnotherUsersRestrictedFileIsReadAsLibpqWould() throws {
        guard geteuid() == 0 else { return }  // only root can give a file away; the rule itself is tested below
        let path = try write("\(key)\n", mode: 0o600)
        XCTAssertEqual(chown(path, 65534, 65534), 0)
        XCTAssertEqual(try VaultKey(contentsOfFile: path).id.rawValue, keyID, "0600: only its owner and root read it")
        XCTAssertEqual(chmod(path, 0o640), 0)
        CryptoAssert.throwsVaultError(.keyConfiguration, mentioning: [path, "has mode 0640"], secrets: [key]) {
            try VaultKey(contentsOfFile: path)
        }
    }

    /// A pipe (as `<(…)` gives) is judged by its own mode.
    func testAPipeIsJudgedByItsMode() throws {
        for (mode, accepted) in [(0o600, true), (0o666, false)] {
            let path = folder.appendingPathComponent("pipe-\(mode)").path
            XCTAssertEqual(mkfifo(path, 0o600), 0)
            XCTAssertEqual(chmod(path, mode_t(mode)), 0)
            let bytes = Array("\(key)\n".utf8)
            let writer = Thread {
                let descriptor = open(path, O_WRONLY)  // waits for the reader
                if accepted { _ = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) } }
                close(descriptor)  // nothing is written to a refused pipe: no SIGPIPE
            }
            writer.start()
            if accepted {
                XCTAssertEqual(try VaultKey(contentsOfFile: path).id.rawValue, keyID)
            } else {
                CryptoAssert.throwsVaultError(.keyConfiguration, mentioning: [path, "has mode 0666"], secrets: [key]) {
                    try VaultKey(contentsOfFile: path)
                }
            }
        }
    }

    /// libpq's rule for private key files, for owners a test cannot create.
    func testTheAccessRuleIsLibpqs() {
        XCTAssertNil(VaultKey.accessProblem(mode: 0o600, owner: 1000))
        XCTAssertNil(VaultKey.accessProblem(mode: 0o400, owner: 1000))
        XCTAssertNotNil(VaultKey.accessProblem(mode: 0o640, owner: 1000))
        XCTAssertNotNil(VaultKey.accessProblem(mode: 0o604, owner: 1000))
        XCTAssertNil(VaultKey.accessProblem(mode: 0o640, owner: 0), "root-owned, read through the group")
        XCTAssertNil(VaultKey.accessProblem(mode: 0o440, owner: 0), "Kubernetes defaultMode 0440 with fsGroup")
        XCTAssertNotNil(VaultKey.accessProblem(mode: 0o660, owner: 0), "the group could change it")
        XCTAssertNotNil(VaultKey.accessProblem(mode: 0o644, owner: 0), "anyone could read it (Kubernetes' default)")
        XCTAssertNotNil(VaultKey.accessProblem(mode: 0o444, owner: 0), "Docker swarm's default")
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
            ) { try Keyring.fromEnvironment(["TOKEN_VAULT_KEY_FILE": "/proc/self/mem"]) }
            // Read directly, the key file is the library's own business: no environment variable in the message.
            let direct = CryptoAssert.throwsVaultError(
                .keyConfiguration, mentioning: ["cannot read the key file (/proc/self/mem)"]
            ) { try VaultKey(contentsOfFile: "/proc/self/mem") }
            XCTAssertFalse(direct?.message.contains("TOKEN_VAULT_") ?? true, direct?.message ?? "")
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
                .keyConfiguration, mentioning: ["TOKEN_VAULT_KEY_FILE", path, problem, "32 random bytes"],
                secrets: contents.split(whereSeparator: \.isNewline).map(String.init)
            ) { try Keyring.fromEnvironment(["TOKEN_VAULT_KEY_FILE": path]) }
        }
    }
}
