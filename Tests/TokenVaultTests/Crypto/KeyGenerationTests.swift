import XCTest

@testable import TokenVault

/// `VaultKey.generate()` makes keys that survive export and import with the same id.
final class CryptoKeyGenerationTests: XCTestCase {
    func testAGeneratedKeyRoundTripsThroughBase64() throws {
        let key = VaultKey.generate()
        let exported = key.exportBase64()
        XCTAssertEqual(exported.count, 44)
        XCTAssertTrue(exported.hasSuffix("="))
        let imported = try VaultKey(base64: exported)
        XCTAssertEqual(imported.id, key.id)
        XCTAssertEqual(imported, key)
        XCTAssertEqual(imported.exportBase64(), exported)
    }

    func testGeneratedKeysDifferAndHaveWellFormedIDs() {
        let keys = (0..<16).map { _ in VaultKey.generate() }
        XCTAssertEqual(Set(keys.map(\.id)).count, keys.count)
        XCTAssertEqual(Set(keys.map { $0.exportBase64() }).count, keys.count)
        for key in keys {
            XCTAssertEqual(key.id.rawValue.count, 32)
            XCTAssertTrue(key.id.rawValue.allSatisfy { "0123456789abcdef".contains($0) }, key.id.rawValue)
        }
    }

    func testAGeneratedKeySealsAndOpens() throws {
        let key = try VaultKey(base64: VaultKey.generate().exportBase64())
        let sealer = Sealer(keyring: try Keyring(current: key))
        let context = SealContext(field: .accessToken, provider: "zoho_crm", clientID: "acme-corp")
        let sealed = sealer.seal(Secret("1000.token"), context: context)
        XCTAssertEqual(try sealer.open(sealed, keyID: key.id, context: context).reveal(), "1000.token")
    }
}
