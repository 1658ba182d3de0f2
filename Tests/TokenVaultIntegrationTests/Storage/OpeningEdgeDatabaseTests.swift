import TokenVault
import TokenVaultTesting
import XCTest

/// Rows that authenticate but hold no token, or no text, written into the database by something other than the
/// vault (which refuses to store them): reading fails, and verify counts them as failing.
final class OpeningEdgeDatabaseTests: DatabaseTestCase {
    private static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    func testVerifyCountsARowThatIsEmptyOrNotUTF8AsFailing() async throws {
        let fixture = try await makeFixture()
        for client in ["text", "binary", "empty"] {
            try await fixture.vault.store(sampleTokens(), client: client, provider: "zoho_crm")
        }
        // Sealed under the vault's own key, as another program holding it could: they authenticate.
        let sealer = Sealer(keyring: fixture.keyring)
        for (client, bytes) in [("binary", [0x31, 0xff] as [UInt8]), ("empty", [])] {
            let sealed = sealer.seal(
                Secret(bytes: bytes), context: SealContext(field: .refreshToken, provider: "zoho_crm", clientID: client)
            )
            _ = try await fixture.sql(
                """
                UPDATE oauth_tokens SET refresh_token_ciphertext = '\\x\(Self.hex(sealed.ciphertext))'::bytea,
                    refresh_token_nonce = '\\x\(Self.hex(sealed.nonce))'::bytea WHERE client_id = '\(client)'
                """)
        }
        let report = try await fixture.vault.verify()
        XCTAssertFalse(report.ok)
        XCTAssertEqual(report.rows, 3)
        XCTAssertEqual(
            report.failures.map { "\($0.clientID)/\($0.field)/\($0.reason)" }.sorted(),
            ["binary/refresh_token/malformed", "empty/refresh_token/malformed"])
        let messages = Dictionary(uniqueKeysWithValues: report.failures.map { ($0.clientID, $0.message) })
        XCTAssertTrue(messages["binary"]?.contains("not UTF-8") ?? false, messages["binary"] ?? "")
        XCTAssertTrue(messages["empty"]?.contains("never stores an empty token") ?? false, messages["empty"] ?? "")
        await assertVaultError(.malformedCiphertext) {
            try await fixture.vault.fetch(client: "binary", provider: "zoho_crm")
        }
        await assertVaultError(.malformedCiphertext) {
            try await fixture.vault.fetch(client: "empty", provider: "zoho_crm")
        }
        _ = try await fixture.vault.fetch(client: "text", provider: "zoho_crm")
    }

    func testTheVaultNeverStoresAnEmptyTokenOrOneThatIsNotUTF8() async throws {
        let fixture = try await makeFixture()
        for refresh in [Secret(""), Secret(bytes: [0x31, 0xff])] {
            await assertVaultError(.invalidInput) {
                try await fixture.vault.store(
                    TokenSet(accessToken: nil, refreshToken: refresh), client: "acme", provider: "zoho_crm")
            }
        }
        let rows = try await fixture.sql("SELECT count(*) FROM oauth_tokens")
        XCTAssertEqual(rows, [["0"]])
    }
}
