import Foundation
import XCTest

@testable import TokenVault

/// `VaultError` in the shape of postgres-nio's `PSQLError`: a switchable code, a message in the library's own
/// terms, and the structured fields a caller acts on.
final class VaultErrorTests: XCTestCase {
    func testLibraryMessagesGiveNoCommandLineAdvice() throws {
        let current = VaultKey.generate()
        let other = VaultKey.generate()
        var errors: [VaultError] = []
        func collect(_ body: () throws(VaultError) -> Void) {
            do throws(VaultError) { try body() } catch { errors.append(error) }
        }
        collect { () throws(VaultError) in _ = try Keyring(current: current, previous: [current]) }
        collect { () throws(VaultError) in _ = try Keyring(current: current, previous: [other, other]) }
        collect { () throws(VaultError) in _ = try VaultKey(base64: "c2hvcnQ=") }
        let context = SealContext(field: .refreshToken, provider: "p", clientID: "c")
        let sealed = Sealer(keyring: try Keyring(current: other)).seal(Secret("rt"), context: context)
        let sealer = Sealer(keyring: try Keyring(current: current))
        collect { () throws(VaultError) in _ = try sealer.open(sealed, keyID: other.id, context: context) }
        errors.append(Vault.notFound(client: "c", provider: "p"))
        errors.append(Vault.noTokens(client: "c", provider: "p"))
        errors.append(Vault.reauthorizationNeeded(client: "c", provider: "p", reason: nil))
        XCTAssertEqual(errors.count, 7)
        for error in errors {
            for advice in ["token-vault", "TOKEN_VAULT_", "ZOHO_", "DATABASE_URL"] {
                XCTAssertFalse(error.message.contains(advice), "\(error.code): \(error.message)")
            }
        }
    }

    func testEqualityIgnoresTheUnderlyingErrorAndDebugDescriptionShowsIt() {
        struct Cause: Error {}
        let plain = VaultError(.providerError, "the endpoint failed.")
        let caused = VaultError(.providerError, "the endpoint failed.", underlying: Cause())
        XCTAssertEqual(plain, caused)
        XCTAssertEqual(caused.description, "the endpoint failed.")
        XCTAssertTrue(caused.debugDescription.contains("underlying: "), caused.debugDescription)
        XCTAssertNotEqual(plain, VaultError(.providerError, "the endpoint failed.", retryAfter: .seconds(3)))
        XCTAssertEqual(
            VaultError(.database, "failed.", sqlState: "23505").description, "failed. (SQLSTATE 23505)")
    }
}
