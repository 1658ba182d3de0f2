import Foundation
import XCTest

@testable import TokenVault

/// Every way to get the key variables wrong is refused with a message that names the variable, never the value.
final class CryptoKeyConfigurationTests: XCTestCase {
    private let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  // public test key A
    private let keyID = "ea7aa2a68d2ab3c9c8e24a45f4828f35"

    private static func base64(ofRandomBytes count: Int) -> String {
        Data((0..<count).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    }

    func testBothKeyAndKeyFileAreRefused() {
        CryptoAssert.throwsVaultError(
            .keyConfiguration, mentioning: ["TOKEN_VAULT_KEY and TOKEN_VAULT_KEY_FILE", "exactly one"], secrets: [key]
        ) { try Keyring.fromEnvironment(["TOKEN_VAULT_KEY": key, "TOKEN_VAULT_KEY_FILE": "/run/secrets/key"]) }
    }

    func testNoKeyIsRefused() {
        let previous = Self.base64(ofRandomBytes: 32)
        let environments: [[String: String]] = [
            [:], ["TOKEN_VAULT_KEY": "", "TOKEN_VAULT_KEY_FILE": ""], ["TOKEN_VAULT_PREVIOUS_KEYS": previous],
        ]
        for environment in environments {
            CryptoAssert.throwsVaultError(
                .keyConfiguration, mentioning: ["no encryption key", "TOKEN_VAULT_KEY_FILE", "32 random bytes"],
                secrets: [previous]
            ) { try Keyring.fromEnvironment(environment) }
        }
    }

    func testWrongLengthsAreRefused() {
        for count in [16, 31, 33, 64] {
            let text = Self.base64(ofRandomBytes: count)
            CryptoAssert.throwsVaultError(
                .keyConfiguration,
                mentioning: ["TOKEN_VAULT_KEY", "decodes to \(count) bytes, not 32", "32 random bytes"],
                secrets: [text]
            ) { try Keyring.fromEnvironment(["TOKEN_VAULT_KEY": text]) }
            CryptoAssert.throwsVaultError(.keyConfiguration, mentioning: ["\(count) bytes"], secrets: [text]) {
                try VaultKey(base64: text)
            }
        }
    }

    func testTextThatIsNotStandardBase64IsRefused() {
        let standard = Data(repeating: 0xfb, count: 32).base64EncodedString()
        let urlSafe = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        XCTAssertNotEqual(standard, urlSafe)
        let bad = [
            "not base64!!", urlSafe, String(key.dropLast()), String(key.prefix(20)) + " " + String(key.dropFirst(20)),
            key + "=", "\(key),",
        ]
        for text in bad {
            let problem = "is not valid standard base64"
            CryptoAssert.throwsVaultError(
                .keyConfiguration, mentioning: ["TOKEN_VAULT_KEY \(problem)"], secrets: [text]
            ) {
                try Keyring.fromEnvironment(["TOKEN_VAULT_KEY": text])
            }
            CryptoAssert.throwsVaultError(.keyConfiguration, mentioning: [problem], secrets: [text]) {
                try VaultKey(base64: text)
            }
        }
    }

    func testAHexKeyIsRefused() {
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        CryptoAssert.throwsVaultError(.keyConfiguration, mentioning: ["not 32"], secrets: [hex]) {
            try VaultKey(base64: hex)
        }
    }

    func testAnEmptyKeyIsRefused() {
        for text in ["", " ", "\n", " \t\n"] {
            CryptoAssert.throwsVaultError(.keyConfiguration, mentioning: ["TOKEN_VAULT_KEY is empty"]) {
                try VaultKey(base64: text, name: "TOKEN_VAULT_KEY")
            }
        }
    }

    func testWhitespaceAroundKeysIsIgnored() throws {
        let previous = try VaultKey(base64: Self.base64(ofRandomBytes: 32))
        for text in [" \(key)", "\(key)\n", "\t\(key) \n", "\n\n\(key)\n"] {
            let keyring = try Keyring.fromEnvironment([
                "TOKEN_VAULT_KEY": text, "TOKEN_VAULT_PREVIOUS_KEYS": " \(previous.exportBase64()) \n",
            ])
            XCTAssertEqual(keyring.current.id.rawValue, keyID)
            XCTAssertEqual(keyring.previous, [previous])
        }
    }

    /// A key pasted from a Windows editor, or a secret written with CRLF, ends in "\r\n".
    func testACarriageReturnLineFeedAfterTheKeyIsIgnored() throws {
        XCTAssertEqual(try VaultKey(base64: key + "\r\n").id.rawValue, keyID)
        XCTAssertEqual(try Keyring.fromEnvironment(["TOKEN_VAULT_KEY": "\(key)\r\n"]).current.id.rawValue, keyID)
        CryptoAssert.throwsVaultError(.keyConfiguration, mentioning: ["TOKEN_VAULT_KEY is empty"]) {
            try VaultKey(base64: " \r\n", name: "TOKEN_VAULT_KEY")
        }
    }

    func testPreviousKeysAreCommaSeparatedAndEmptyEntriesSkipped() throws {
        let (first, second) = (VaultKey.generate(), VaultKey.generate())
        let keyring = try Keyring.fromEnvironment([
            "TOKEN_VAULT_KEY": key,
            "TOKEN_VAULT_PREVIOUS_KEYS": " \(first.exportBase64()) ,, \t,\(second.exportBase64()),",
        ])
        XCTAssertEqual(keyring.keyIDs.map(\.rawValue), [keyID, first.id.rawValue, second.id.rawValue])
        XCTAssertEqual(
            try Keyring.fromEnvironment(["TOKEN_VAULT_KEY": key, "TOKEN_VAULT_PREVIOUS_KEYS": ""]).keyIDs.count, 1)
    }

    func testABadPreviousKeyIsNamedByItsPosition() {
        let good = VaultKey.generate().exportBase64()
        let short = Self.base64(ofRandomBytes: 16)
        let cases = [
            ("\(good), not-a-key", "entry 2 of TOKEN_VAULT_PREVIOUS_KEYS is not valid standard base64", "not-a-key"),
            ("\(good),,\(short)", "entry 3 of TOKEN_VAULT_PREVIOUS_KEYS decodes to 16 bytes", short),
            ("\(short)", "entry 1 of TOKEN_VAULT_PREVIOUS_KEYS", short),
        ]
        for (list, expected, bad) in cases {
            CryptoAssert.throwsVaultError(.keyConfiguration, mentioning: [expected], secrets: [key, good, bad]) {
                try Keyring.fromEnvironment(["TOKEN_VAULT_KEY": key, "TOKEN_VAULT_PREVIOUS_KEYS": list])
            }
        }
    }
}
