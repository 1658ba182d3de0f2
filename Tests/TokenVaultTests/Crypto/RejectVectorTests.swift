import XCTest

@testable import TokenVault

/// Every `reject` entry of Keys/vectors/token-vault-v1.json fails to open, with the error its reason names.
final class CryptoRejectVectorTests: XCTestCase {
    func testEveryRejectEntryFailsWithTheExpectedCode() throws {
        let file = try CryptoVectors.tokenVault()
        let keyA = try VaultKey(base64: file.keys[0].keyBase64)
        let keyB = try VaultKey(base64: file.keys[1].keyBase64)
        let sealer = Sealer(keyring: try Keyring(current: keyA, previous: [keyB]))
        // The 1-character vector token "x" occurs in any English message; longer tokens must never appear.
        let plaintexts = file.seal.map(\.plaintext).filter { $0.count > 4 }
        XCTAssertFalse(file.reject.isEmpty)

        for (index, vector) in file.reject.enumerated() {
            let code = try XCTUnwrap(Self.expectedCode(vector.reason), "reject[\(index)]: \(vector.reason)")
            let field = try XCTUnwrap(TokenField(rawValue: vector.field))
            let context = SealContext(field: field, provider: vector.provider, clientID: vector.clientID)
            let sealed = SealedValue(
                ciphertext: CryptoVectors.bytes(hex: vector.ciphertextHex),
                nonce: CryptoVectors.bytes(hex: vector.nonceHex))
            let error = CryptoAssert.throwsVaultError(
                code, mentioning: [vector.clientID, vector.provider, vector.field],
                secrets: plaintexts + file.keys.map(\.keyBase64)
            ) {
                try sealer.open(sealed, keyID: KeyID(rawValue: vector.keyID), context: context)
            }
            if let error, error.code != code { XCTFail("reject[\(index)] (\(vector.reason)): \(error.message)") }
            if code == .unknownKey || code == .authenticationFailed {
                XCTAssertTrue(error?.message.contains(vector.keyID) ?? false, "reject[\(index)] names the key id")
            }
        }
    }

    /// "unsupported format" has no code of its own: a format byte this version cannot read is malformed for it.
    static func expectedCode(_ reason: String) -> VaultError.Code? {
        if reason.hasPrefix("authentication failure:") { return .authenticationFailed }
        if reason.hasPrefix("malformed:") || reason.hasPrefix("unsupported format:") { return .malformedCiphertext }
        if reason.hasPrefix("unknown key id:") { return .unknownKey }
        return nil
    }
}
