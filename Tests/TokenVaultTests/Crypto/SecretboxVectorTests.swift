import XCTest

@testable import TokenVault

/// libsodium's own crypto_secretbox known answer, through the only file that calls libsodium.
final class CryptoSecretboxVectorTests: XCTestCase {
    func testSealMatchesLibsodiumVector() throws {
        let vector = try CryptoVectors.load("libsodium-secretbox.json", as: CryptoVectors.SecretboxFile.self)
        let key = CryptoVectors.bytes(hex: vector.keyHex)
        let nonce = CryptoVectors.bytes(hex: vector.nonceHex)
        let message = CryptoVectors.bytes(hex: vector.messageHex)
        var output = [UInt8](repeating: 0, count: message.count + Sodium.macBytes)
        output.withUnsafeMutableBytes { out in
            message.withUnsafeBytes { message in
                nonce.withUnsafeBytes { nonce in
                    key.withUnsafeBytes { key in
                        Sodium.secretboxSeal(into: out, message: message, nonce: nonce, key: key)
                    }
                }
            }
        }
        XCTAssertEqual(CryptoVectors.hex(output), vector.ciphertextHex)
    }

    func testOpenMatchesLibsodiumVector() throws {
        let vector = try CryptoVectors.load("libsodium-secretbox.json", as: CryptoVectors.SecretboxFile.self)
        let ciphertext = CryptoVectors.bytes(hex: vector.ciphertextHex)
        XCTAssertEqual(open(ciphertext, vector).map(CryptoVectors.hex), vector.messageHex)

        var tampered = ciphertext
        tampered[ciphertext.count - 1] ^= 0x80
        XCTAssertNil(open(tampered, vector), "a tampered box must not open")
        XCTAssertNil(open(Array(ciphertext.prefix(Sodium.macBytes - 1)), vector), "shorter than the MAC")
    }

    private func open(_ ciphertext: [UInt8], _ vector: CryptoVectors.SecretboxFile) -> [UInt8]? {
        let key = CryptoVectors.bytes(hex: vector.keyHex)
        let nonce = CryptoVectors.bytes(hex: vector.nonceHex)
        var output = [UInt8](repeating: 0, count: max(ciphertext.count - Sodium.macBytes, 0))
        let opened = output.withUnsafeMutableBytes { out in
            ciphertext.withUnsafeBytes { ciphertext in
                nonce.withUnsafeBytes { nonce in
                    key.withUnsafeBytes { key in
                        Sodium.secretboxOpen(into: out, ciphertext: ciphertext, nonce: nonce, key: key)
                    }
                }
            }
        }
        return opened ? output : nil
    }
}
