import XCTest

@testable import TokenVault

/// Every `seal` entry of Keys/vectors/token-vault-v1.json, step by step: key id, context, subkey, column, opening.
final class CryptoKnownAnswerTests: XCTestCase {
    func testFileIsFormatOneWithBothTestKeys() throws {
        let file = try CryptoVectors.tokenVault()
        XCTAssertEqual(file.format, Int(Sealer.formatVersion))
        XCTAssertEqual(file.keys.count, 2)
        XCTAssertGreaterThanOrEqual(file.seal.count, 10)
    }

    func testKeyIDs() throws {
        for key in try CryptoVectors.tokenVault().keys {
            XCTAssertEqual(try VaultKey(base64: key.keyBase64).id.rawValue, key.keyID, key.name)
        }
    }

    func testContextEncoding() throws {
        for (index, vector) in try CryptoVectors.tokenVault().seal.enumerated() {
            XCTAssertEqual(CryptoVectors.hex(try context(vector).encoded), vector.contextHex, "seal[\(index)]")
        }
    }

    func testSubkeys() throws {
        let keys = try CryptoVectors.keys()
        for (index, vector) in try CryptoVectors.tokenVault().seal.enumerated() {
            let key = try XCTUnwrap(keys[vector.keyID], "seal[\(index)] names an unknown key")
            let context = try context(vector)
            let subkey = withUnsafeTemporaryAllocation(byteCount: 32, alignment: 1) { output in
                Sealer.deriveSubkey(key: key, context: context, into: output)
                return CryptoVectors.hex(UnsafeRawBufferPointer(output))
            }
            XCTAssertEqual(subkey, vector.subkeyHex, "seal[\(index)]")
        }
    }

    func testSealingWithTheVectorNonceGivesTheVectorColumn() throws {
        let keys = try CryptoVectors.keys()
        let sealer = Sealer(keyring: try Keyring(current: VaultKey.generate()))
        for (index, vector) in try CryptoVectors.tokenVault().seal.enumerated() {
            let key = try XCTUnwrap(keys[vector.keyID])
            let nonce = CryptoVectors.bytes(hex: vector.nonceHex)
            let sealed = sealer.seal(Secret(vector.plaintext), context: try context(vector), key: key, nonce: nonce)
            XCTAssertEqual(CryptoVectors.hex(sealed.ciphertext), vector.ciphertextHex, "seal[\(index)]")
            XCTAssertEqual(sealed.nonce, nonce, "seal[\(index)]")
            XCTAssertEqual(sealed.ciphertext.count, 17 + vector.plaintext.utf8.count, "seal[\(index)]")
        }
    }

    func testOpeningGivesThePlaintext() throws {
        let keys = try CryptoVectors.keys()
        let sealer = Sealer(keyring: try Keyring(current: keys.values.first!, previous: Array(keys.values.dropFirst())))
        for (index, vector) in try CryptoVectors.tokenVault().seal.enumerated() {
            let sealed = SealedValue(
                ciphertext: CryptoVectors.bytes(hex: vector.ciphertextHex),
                nonce: CryptoVectors.bytes(hex: vector.nonceHex))
            let opened = try sealer.open(sealed, keyID: KeyID(rawValue: vector.keyID), context: try context(vector))
            XCTAssertEqual(opened.reveal(), vector.plaintext, "seal[\(index)]")
            XCTAssertEqual(opened, Secret(vector.plaintext), "seal[\(index)]")
        }
    }

    private func context(_ vector: CryptoVectors.Seal) throws -> SealContext {
        let field = try XCTUnwrap(TokenField(rawValue: vector.field), "unknown field \(vector.field)")
        return SealContext(field: field, provider: vector.provider, clientID: vector.clientID)
    }
}
