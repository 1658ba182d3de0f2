import XCTest

@testable import TokenVault

/// Secrets and keys compare by content, in constant time, and never equal a value of another length.
final class CryptoEqualityTests: XCTestCase {
    func testSecrets() {
        XCTAssertEqual(Secret("1000.abc"), Secret("1000.abc"))
        XCTAssertEqual(Secret(""), Secret(""))
        XCTAssertEqual(Secret("tökén"), Secret(bytes: Array("tökén".utf8)))
        XCTAssertNotEqual(Secret("1000.abc"), Secret("1000.abd"))
        XCTAssertNotEqual(Secret("1000.abc"), Secret("2000.abc"))
        XCTAssertNotEqual(Secret("1000.abc"), Secret("1000.abcd"), "a longer secret with the same prefix")
        XCTAssertNotEqual(Secret("1000.abcd"), Secret("1000.abc"))
        XCTAssertNotEqual(Secret(""), Secret("a"))
        XCTAssertNotEqual(Secret(bytes: [0]), Secret(""))
    }

    func testKeys() throws {
        let text = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
        XCTAssertEqual(try VaultKey(base64: text), try VaultKey(base64: text))
        XCTAssertNotEqual(
            try VaultKey(base64: text), try VaultKey(base64: "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8="))
        XCTAssertNotEqual(VaultKey.generate(), VaultKey.generate())
    }
}
