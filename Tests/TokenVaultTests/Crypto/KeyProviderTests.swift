import TokenVault
import XCTest

/// Keys from bytes a KMS SDK returned, and keyrings from an async key provider.
final class KeyProviderTests: XCTestCase {
    let bytes: [UInt8] = Array(0..<32)
    /// Public test key A of Keys/vectors: bytes 00 01 … 1f.
    let keyA = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

    func testAKeyFromRawBytesOrASecretIsTheKeyOfItsBase64() throws {
        let expected = try VaultKey(base64: keyA)
        XCTAssertEqual(try bytes.withUnsafeBytes { try VaultKey(bytes: $0) }, expected)
        XCTAssertEqual(try VaultKey(bytes: Secret(bytes: bytes)), expected)
        XCTAssertEqual(try VaultKey(base64Encoded: Secret(" \(keyA)\n")), expected)
        XCTAssertEqual(expected.id.rawValue, "ea7aa2a68d2ab3c9c8e24a45f4828f35")
    }

    func testWrongLengthsAndTextAreRefusedWithoutTheirContent() {
        for count in [0, 16, 31, 33, 64] {
            XCTAssertThrowsError(
                try Array(repeating: UInt8(7), count: count).withUnsafeBytes { try VaultKey(bytes: $0) }
            ) {
                let error = $0 as? VaultError
                XCTAssertEqual(error?.code, .keyConfiguration)
                XCTAssertTrue(error?.message.contains("\(count) bytes long, not 32") ?? false, "\($0)")
            }
        }
        XCTAssertThrowsError(try VaultKey(base64Encoded: Secret("not-a-key-SECRETISH"), name: "the KMS answer")) {
            XCTAssertTrue("\($0)".hasPrefix("the KMS answer is not valid standard base64"), "\($0)")
            XCTAssertFalse("\($0)".contains("SECRETISH"))
        }
    }

    struct Provider: KeyProvider {
        let current: VaultKey
        let previous: [VaultKey]
        func currentKey() async throws -> VaultKey { current }
        func previousKeys() async throws -> [VaultKey] { previous }
    }

    struct CurrentOnly: KeyProvider {
        let current: VaultKey
        func currentKey() async throws -> VaultKey { current }
    }

    struct ClientError: Error, CustomStringConvertible {
        var description: String { "request body held SECRET-PLAINTEXT" }
    }

    func testAKeyringFromAProvider() async throws {
        let current = VaultKey.generate()
        let previous = [VaultKey.generate(), VaultKey.generate()]
        let keyring = try await Keyring(provider: Provider(current: current, previous: previous))
        XCTAssertEqual(keyring.current, current)
        XCTAssertEqual(keyring.previous, previous)
        let currentOnly = try await Keyring(provider: CurrentOnly(current: current))
        XCTAssertEqual(currentOnly.previous, [])
        let fromClosures = try await Keyring(fetchingCurrent: { current }, previous: { previous })
        XCTAssertEqual(fromClosures.keyIDs, keyring.keyIDs)
    }

    func testAProvidersErrorsAndMistakes() async throws {
        let current = VaultKey.generate()
        do {
            _ = try await Keyring(fetchingCurrent: { throw ClientError() })
            XCTFail("no error")
        } catch {
            XCTAssertEqual(error.code, .keyConfiguration)
            XCTAssertTrue(error.message.contains("ClientError"), error.message)
            XCTAssertFalse(error.message.contains("SECRET-PLAINTEXT"), error.message)
            XCTAssertTrue(error.underlying is ClientError)
        }
        do {
            _ = try await Keyring(provider: Provider(current: current, previous: [current]))
            XCTFail("no error")
        } catch {
            XCTAssertTrue(error.message.contains("also appears among the previous keys"), error.message)
        }
        do {
            _ = try await Keyring(fetchingCurrent: { throw CancellationError() })
            XCTFail("no error")
        } catch {
            XCTAssertEqual(error.code, .cancelled)
        }
    }

    func testTheEnvironmentKeyringRunsNoCommand() {
        XCTAssertThrowsError(try Keyring.fromEnvironment([Keyring.Variable.keyCommand: "/bin/echo x"])) {
            XCTAssertTrue("\($0)".contains("runs no program"), "\($0)")
        }
        XCTAssertThrowsError(
            try Keyring.fromEnvironment([Keyring.Variable.keyCommand: "/bin/echo x", Keyring.Variable.key: keyA])
        ) {
            XCTAssertTrue("\($0)".contains("set exactly one source"), "\($0)")
        }
        XCTAssertThrowsError(
            try Keyring.fromEnvironment([Keyring.Variable.key: keyA, Keyring.Variable.previousKeysCommand: "/bin/true"])
        ) {
            XCTAssertTrue("\($0)".contains("TOKEN_VAULT_PREVIOUS_KEYS_COMMAND is set"), "\($0)")
        }
    }
}
