import XCTest

@testable import TokenVault

/// A value copied into another row or field does not open there: the context is bound into the subkey.
final class CryptoContextSwapTests: XCTestCase {
    private let token = "1000.3c7fe0f9f969482269f2837c9db01dc7.6c22aaf4c7d1a8c66537d399fd47e899"
    private let home = SealContext(field: .accessToken, provider: "zoho_crm", clientID: "acme-corp")

    private func assertDoesNotOpen(
        in other: SealContext, sealedIn original: SealContext? = nil, file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let sealer = Sealer(keyring: try Keyring(current: VaultKey.generate()))
        let sealed = sealer.seal(Secret(token), context: original ?? home)
        CryptoAssert.throwsVaultError(
            .authenticationFailed, mentioning: [other.field.rawValue, other.provider, other.clientID],
            secrets: [token], file: file, line: line
        ) { try sealer.open(sealed, keyID: sealer.keyring.current.id, context: other) }
    }

    func testAnotherClientID() throws {
        try assertDoesNotOpen(in: SealContext(field: .accessToken, provider: "zoho_crm", clientID: "acme-corp-2"))
        try assertDoesNotOpen(in: SealContext(field: .accessToken, provider: "zoho_crm", clientID: "Acme-corp"))
        try assertDoesNotOpen(in: SealContext(field: .accessToken, provider: "zoho_crm", clientID: ""))
    }

    func testAnotherProvider() throws {
        try assertDoesNotOpen(in: SealContext(field: .accessToken, provider: "zoho_calendar", clientID: "acme-corp"))
    }

    func testTheOtherField() throws {
        try assertDoesNotOpen(in: SealContext(field: .refreshToken, provider: "zoho_crm", clientID: "acme-corp"))
        try assertDoesNotOpen(
            in: SealContext(field: .accessToken, provider: "zoho_crm", clientID: "acme-corp"),
            sealedIn: SealContext(field: .refreshToken, provider: "zoho_crm", clientID: "acme-corp"))
    }

    /// The length prefixes keep ("zoho", "_crmacme") and ("zoho_crm", "acme") apart.
    func testMovingCharactersBetweenProviderAndClientID() throws {
        try assertDoesNotOpen(
            in: SealContext(field: .accessToken, provider: "zoho", clientID: "_crmacme"),
            sealedIn: SealContext(field: .accessToken, provider: "zoho_crm", clientID: "acme"))
        XCTAssertNotEqual(
            SealContext(field: .accessToken, provider: "ab", clientID: "c").encoded,
            SealContext(field: .accessToken, provider: "a", clientID: "bc").encoded)
    }

    func testTheNonceOfTheOtherField() throws {
        let sealer = Sealer(keyring: try Keyring(current: VaultKey.generate()))
        let refresh = SealContext(field: .refreshToken, provider: "zoho_crm", clientID: "acme-corp")
        let access = sealer.seal(Secret(token), context: home)
        let other = sealer.seal(Secret(token), context: refresh)
        let swapped = SealedValue(ciphertext: access.ciphertext, nonce: other.nonce)
        CryptoAssert.throwsVaultError(.authenticationFailed, secrets: [token]) {
            try sealer.open(swapped, keyID: sealer.keyring.current.id, context: home)
        }
    }
}
