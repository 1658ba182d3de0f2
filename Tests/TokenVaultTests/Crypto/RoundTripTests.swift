import XCTest

@testable import TokenVault

/// Sealing then opening gives the secret back, whatever its length or alphabet.
final class CryptoRoundTripTests: XCTestCase {
    private let context = SealContext(field: .accessToken, provider: "zoho_crm", clientID: "acme-corp")

    func testSecretsOfEveryShapeRoundTrip() throws {
        let sealer = Sealer(keyring: try Keyring(current: VaultKey.generate()))
        let secrets = [
            "x", "1000.3c7fe0f9f969482269f2837c9db01dc7.6c22aaf4c7d1a8c66537d399fd47e899",
            String(repeating: "a1b2c3d4e5", count: 500), "tökén-✓ 東京 🔑", "\u{0}inner\u{0}nul",
        ]
        for text in secrets {
            let sealed = sealer.seal(Secret(text), context: context)
            XCTAssertEqual(sealed.ciphertext.count, Sealer.overhead + text.utf8.count)
            XCTAssertEqual(sealed.ciphertext.first, Sealer.formatVersion)
            XCTAssertEqual(sealed.nonce.count, Sodium.nonceBytes)
            let opened = try sealer.open(sealed, keyID: sealer.keyring.current.id, context: context)
            XCTAssertEqual(opened.reveal(), text, "a \(text.utf8.count)-byte secret")
            XCTAssertEqual(opened.count, text.utf8.count)
        }
    }

    /// Any UTF-8 text, also with control characters and every scalar length (what is not UTF-8 is refused: see
    /// OpeningEdgeTests).
    func testArbitraryTextRoundTrips() throws {
        let sealer = Sealer(keyring: try Keyring(current: VaultKey.generate()))
        let scalars = (0..<2000).compactMap { Unicode.Scalar(UInt32(truncatingIfNeeded: $0 &* 557) % 0x11_0000) }
        let bytes = Array(String(String.UnicodeScalarView(scalars)).utf8)
        let sealed = sealer.seal(Secret(bytes: bytes), context: context)
        let opened = try sealer.open(sealed, keyID: sealer.keyring.current.id, context: context)
        XCTAssertEqual(opened.withUnsafeBytes { Array($0) }, bytes)
    }

    func testTheCiphertextDoesNotContainThePlaintext() throws {
        let sealer = Sealer(keyring: try Keyring(current: VaultKey.generate()))
        let token = "1000.3c7fe0f9f969482269f2837c9db01dc7.6c22aaf4c7d1a8c66537d399fd47e899"
        let sealed = sealer.seal(Secret(token), context: context)
        let tokenBytes = Array(token.utf8)
        XCTAssertFalse(
            sealed.ciphertext.indices.contains { sealed.ciphertext[$0...].starts(with: tokenBytes.prefix(8)) })
    }

    func testTwoSealsOfTheSameTokenDiffer() throws {
        let sealer = Sealer(keyring: try Keyring(current: VaultKey.generate()))
        let token = Secret("1000.b28a05f44630742839e5784a960c883c.07ffd47810970ef106e36c1f44305cdd")
        let first = sealer.seal(token, context: context)
        let second = sealer.seal(token, context: context)
        XCTAssertNotEqual(first.nonce, second.nonce, "every seal draws a fresh nonce")
        XCTAssertNotEqual(first.ciphertext, second.ciphertext)
        XCTAssertEqual(try sealer.open(first, keyID: sealer.keyring.current.id, context: context), token)
        XCTAssertEqual(try sealer.open(second, keyID: sealer.keyring.current.id, context: context), token)
    }
}
