import XCTest

@testable import TokenVault

/// Any change to a stored value (a flipped bit, a cut, an extra byte) is refused, never opened to something else.
final class CryptoTamperTests: XCTestCase {
    private let token = "1000.3c7fe0f9f969482269f2837c9db01dc7.6c22aaf4c7d1a8c66537d399fd47e899"
    private let context = SealContext(field: .refreshToken, provider: "zoho_crm", clientID: "acme-corp")

    private func fixture() throws -> (Sealer, SealedValue) {
        let sealer = Sealer(keyring: try Keyring(current: VaultKey.generate()))
        return (sealer, sealer.seal(Secret(token), context: context))
    }

    private func open(_ sealer: Sealer, _ sealed: SealedValue) throws(VaultError) -> Secret {
        try sealer.open(sealed, keyID: sealer.keyring.current.id, context: context)
    }

    func testEveryBitFlipOfTheCiphertextIsRejected() throws {
        let (sealer, sealed) = try fixture()
        XCTAssertEqual(try open(sealer, sealed).reveal(), token)
        for bit in 0..<(sealed.ciphertext.count * 8) {
            var tampered = sealed
            tampered.ciphertext[bit / 8] ^= 1 << UInt8(bit % 8)
            // The first byte is the format byte: changing it gives a format this version cannot read.
            let expected: VaultError.Code = bit < 8 ? .malformedCiphertext : .authenticationFailed
            CryptoAssert.throwsVaultError(expected, secrets: [token]) { try open(sealer, tampered) }
        }
    }

    func testEveryBitFlipOfTheNonceIsRejected() throws {
        let (sealer, sealed) = try fixture()
        for bit in 0..<(sealed.nonce.count * 8) {
            var tampered = sealed
            tampered.nonce[bit / 8] ^= 1 << UInt8(bit % 8)
            CryptoAssert.throwsVaultError(.authenticationFailed, secrets: [token]) { try open(sealer, tampered) }
        }
    }

    func testEveryTruncationIsRejected() throws {
        let (sealer, sealed) = try fixture()
        for length in 0..<sealed.ciphertext.count {
            var tampered = sealed
            tampered.ciphertext = Array(sealed.ciphertext.prefix(length))
            // Format byte + MAC and shorter cannot be a sealed token at all (tokens are never empty); longer ones
            // fail the MAC.
            let expected: VaultError.Code = length <= Sealer.overhead ? .malformedCiphertext : .authenticationFailed
            CryptoAssert.throwsVaultError(expected, secrets: [token]) { try open(sealer, tampered) }
        }
    }

    func testAnAppendedByteIsRejected() throws {
        let (sealer, sealed) = try fixture()
        for extra: UInt8 in [0x00, 0xff] {
            var tampered = sealed
            tampered.ciphertext.append(extra)
            CryptoAssert.throwsVaultError(.authenticationFailed, secrets: [token]) { try open(sealer, tampered) }
        }
    }

    func testANonceOfTheWrongLengthIsMalformed() throws {
        let (sealer, sealed) = try fixture()
        for nonce in [[], Array(sealed.nonce.dropLast()), sealed.nonce + [0]] {
            let tampered = SealedValue(ciphertext: sealed.ciphertext, nonce: nonce)
            CryptoAssert.throwsVaultError(
                .malformedCiphertext, mentioning: ["nonce of \(nonce.count) bytes", "acme-corp", "zoho_crm"],
                secrets: [token]
            ) { try open(sealer, tampered) }
        }
    }

    func testMessagesSayWhatHappenedAndWhatToDo() throws {
        let (sealer, sealed) = try fixture()
        var flipped = sealed
        flipped.ciphertext[40] ^= 0x01
        CryptoAssert.throwsVaultError(
            .authenticationFailed,
            mentioning: ["refresh_token", "acme-corp", "zoho_crm", sealer.keyring.current.id.rawValue, "altered"],
            secrets: [token] + CryptoAssert.secretForms(of: sealer.keyring.current)
        ) { try open(sealer, flipped) }

        var newFormat = sealed
        newFormat.ciphertext[0] = 2
        CryptoAssert.throwsVaultError(
            .malformedCiphertext, mentioning: ["format byte 2", "newer token-vault"], secrets: [token]
        ) { try open(sealer, newFormat) }

        let cut = SealedValue(ciphertext: Array(sealed.ciphertext.prefix(5)), nonce: sealed.nonce)
        CryptoAssert.throwsVaultError(
            .malformedCiphertext, mentioning: ["5 bytes", "truncated"], secrets: [token]
        ) { try open(sealer, cut) }
    }
}
