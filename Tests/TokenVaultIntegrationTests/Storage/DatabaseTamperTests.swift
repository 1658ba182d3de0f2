import TokenVault
import TokenVaultTesting
import XCTest

/// Rows altered in the database itself: each must fail to open, and verify must name it.
final class DatabaseTamperTests: DatabaseTestCase {
    func testFlippedByteInTheDatabaseFailsAuthenticationAndVerifyNamesTheRow() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "acme", provider: "zoho_crm")
        try await fixture.vault.store(sampleTokens(), client: "other", provider: "zoho_crm")
        _ = try await fixture.sql(
            """
            UPDATE oauth_tokens SET refresh_token_ciphertext = set_byte(refresh_token_ciphertext, 20,
                get_byte(refresh_token_ciphertext, 20) # 1) WHERE client_id = 'acme'
            """)
        await assertVaultError(.authenticationFailed) {
            try await fixture.vault.fetch(client: "acme", provider: "zoho_crm")
        }
        let report = try await fixture.vault.verify()
        XCTAssertFalse(report.ok)
        XCTAssertEqual(report.rows, 2)
        XCTAssertEqual(
            report.failures.map { "\($0.clientID)/\($0.field)/\($0.reason)" },
            ["acme/refresh_token/failed authentication"])
    }

    func testCiphertextCopiedToAnotherRowFails() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        try await fixture.vault.store(sampleTokens(), client: "b", provider: "zoho_crm")
        _ = try await fixture.sql(
            """
            UPDATE oauth_tokens SET refresh_token_ciphertext = src.refresh_token_ciphertext,
                refresh_token_nonce = src.refresh_token_nonce
            FROM oauth_tokens src WHERE src.client_id = 'a' AND oauth_tokens.client_id = 'b'
            """)
        await assertVaultError(.authenticationFailed) {
            try await fixture.vault.fetch(client: "b", provider: "zoho_crm")
        }
        _ = try await fixture.vault.fetch(client: "a", provider: "zoho_crm")
    }

    func testAccessCiphertextMovedIntoTheRefreshColumnFails() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        _ = try await fixture.sql(
            """
            UPDATE oauth_tokens SET refresh_token_ciphertext = access_token_ciphertext,
                refresh_token_nonce = access_token_nonce
            """)
        await assertVaultError(.authenticationFailed) {
            try await fixture.vault.fetch(client: "a", provider: "zoho_crm")
        }
    }

    func testRowMovedToAnotherProviderFails() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        _ = try await fixture.sql("UPDATE oauth_tokens SET provider = 'zoho_calendar'")
        await assertVaultError(.authenticationFailed) {
            try await fixture.vault.fetch(client: "a", provider: "zoho_calendar")
        }
    }

    func testTruncatedAndMalformedColumnsAreReportedAsMalformed() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        try await fixture.vault.store(sampleTokens(), client: "b", provider: "zoho_crm")
        _ = try await fixture.sql(
            "UPDATE oauth_tokens SET access_token_ciphertext = substring(access_token_ciphertext from 1 for 10) WHERE client_id = 'a'"
        )
        _ = try await fixture.sql("UPDATE oauth_tokens SET refresh_token_nonce = '\\x00'::bytea WHERE client_id = 'b'")
        let report = try await fixture.vault.verify()
        XCTAssertEqual(
            report.failures.map { "\($0.clientID)/\($0.field)/\($0.reason)" },
            ["a/access_token/malformed", "b/refresh_token/malformed"])
    }

    func testRowUnderAnUnknownKeyIsReportedByKeyIDNotAsTampering() async throws {
        let oldKey = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: oldKey))
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        let newKeyOnly = try fixture.reopen(keyring: try Keyring(current: .generate()))
        let error = await assertVaultError(.unknownKey) {
            try await newKeyOnly.fetch(client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(error?.message.contains("sealed under key \(oldKey.id), which is not in the keyring") ?? false)
        let report = try await newKeyOnly.verify()
        XCTAssertEqual(report.failures.map(\.reason), ["unknown key id", "unknown key id"])
        XCTAssertEqual(report.rowsByKeyID, [oldKey.id.rawValue: 1])
        // With the old key among the previous keys, it opens again.
        let withPrevious = try fixture.reopen(keyring: try Keyring(current: .generate(), previous: [oldKey]))
        _ = try await withPrevious.fetch(client: "a", provider: "zoho_crm")
        let verified = try await withPrevious.verify()
        XCTAssertTrue(verified.ok)
        await newKeyOnly.shutdown()
        await withPrevious.shutdown()
    }
}
