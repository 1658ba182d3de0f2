import XCTest

@testable import TokenVault

/// The current key seals; previous keys only open; a row under a key that is not configured names that key.
final class CryptoKeyringTests: XCTestCase {
    private let token = "1000.b28a05f44630742839e5784a960c883c.07ffd47810970ef106e36c1f44305cdd"
    private let context = SealContext(field: .refreshToken, provider: "zoho_calendar", clientID: "globex")

    func testAKeyMissingFromTheKeyringIsUnknownAndNamed() throws {
        let old = VaultKey.generate()
        let sealed = Sealer(keyring: try Keyring(current: old)).seal(Secret(token), context: context)
        let sealer = Sealer(keyring: try Keyring(current: VaultKey.generate(), previous: [VaultKey.generate()]))
        CryptoAssert.throwsVaultError(
            .unknownKey,
            mentioning: [
                old.id.rawValue, "not in the keyring", "previous keys", "globex", "zoho_calendar",
            ],
            secrets: [token] + CryptoAssert.secretForms(of: old) + CryptoAssert.secretForms(of: sealer.keyring.current)
        ) { try sealer.open(sealed, keyID: old.id, context: context) }
    }

    func testAValueSealedUnderThePreviousKeyStillOpens() throws {
        let old = VaultKey.generate()
        let new = VaultKey.generate()
        let sealed = Sealer(keyring: try Keyring(current: old)).seal(Secret(token), context: context)
        let rotated = Sealer(keyring: try Keyring(current: new, previous: [old]))
        XCTAssertEqual(try rotated.open(sealed, keyID: old.id, context: context).reveal(), token)
    }

    func testSealingAlwaysUsesTheCurrentKey() throws {
        let old = VaultKey.generate()
        let new = VaultKey.generate()
        let rotated = Sealer(keyring: try Keyring(current: new, previous: [old]))
        let onlyOld = Sealer(keyring: try Keyring(current: old))
        let onlyNew = Sealer(keyring: try Keyring(current: new))
        for _ in 0..<20 {
            let sealed = rotated.seal(Secret(token), context: context)
            XCTAssertEqual(try onlyNew.open(sealed, keyID: new.id, context: context).reveal(), token)
            CryptoAssert.throwsVaultError(.authenticationFailed, secrets: [token]) {
                try onlyOld.open(sealed, key: old, context: context)
            }
        }
    }

    func testLookupAndOrder() throws {
        let (current, first, second) = (VaultKey.generate(), VaultKey.generate(), VaultKey.generate())
        let keyring = try Keyring(current: current, previous: [first, second])
        XCTAssertEqual(keyring.keyIDs, [current.id, first.id, second.id])
        XCTAssertEqual(keyring.key(for: first.id), first)
        XCTAssertNil(keyring.key(for: KeyID(rawValue: "00000000000000000000000000000000")))
    }

    func testTheCurrentKeyAmongThePreviousKeysIsRefused() throws {
        let current = VaultKey.generate()
        let copy = try VaultKey(base64: current.exportBase64())
        for previous in [[current], [VaultKey.generate(), copy]] {
            CryptoAssert.throwsVaultError(
                .keyConfiguration, mentioning: [current.id.rawValue, "previous keys"],
                secrets: CryptoAssert.secretForms(of: current)
            ) { try Keyring(current: current, previous: previous) }
        }
    }

    func testADuplicatePreviousKeyIsRefused() throws {
        let previous = VaultKey.generate()
        CryptoAssert.throwsVaultError(
            .keyConfiguration, mentioning: [previous.id.rawValue, "twice"],
            secrets: CryptoAssert.secretForms(of: previous)
        ) { try Keyring(current: VaultKey.generate(), previous: [previous, VaultKey.generate(), previous]) }
    }

    func testTheSameMistakesInTheEnvironmentAreRefused() throws {
        let current = VaultKey.generate().exportBase64()
        let previous = VaultKey.generate().exportBase64()
        for list in [current, "\(previous),\(previous)"] {
            CryptoAssert.throwsVaultError(.keyConfiguration, secrets: [current, previous]) {
                try Keyring.fromEnvironment(["TOKEN_VAULT_KEY": current, "TOKEN_VAULT_PREVIOUS_KEYS": list])
            }
        }
    }
}
