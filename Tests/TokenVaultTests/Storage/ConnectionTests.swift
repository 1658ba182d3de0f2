import TokenVault
import TokenVaultTesting
import XCTest

final class ConnectionTests: XCTestCase {
    func testADroppedConnectionIsReplacedAndTheReadRetried() async throws {
        let fixture = try await VaultFixture.make(maximumConnections: 1)
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        // Kill the vault's only connection from the server side.
        let killed = try await fixture.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'token-vault' AND datname = current_database()"
        )
        XCTAssertEqual(killed.count, 1)
        let stored = try await fixture.vault.fetch(client: "a", provider: "zoho_crm")
        XCTAssertNotNil(stored.accessToken)
        // And writes work on the replacement connection.
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        await fixture.tearDown()
    }

    func testUnreachableDatabaseSaysSoWithoutThePassword() async throws {
        let vault = Vault(
            configuration: VaultConfiguration(
                databaseURL: "postgresql://vault:hunter2-secret@/vault?host=/nonexistent-socket-dir&connect_timeout=2",
                keyring: try Keyring(current: .generate())))
        let error = await assertVaultError(.connectionFailed) { try await vault.fetch(client: "a", provider: "b") }
        let text = "\(String(describing: error)) \(error?.message ?? "")"
        XCTAssertTrue(text.contains("cannot connect to PostgreSQL"), text)
        XCTAssertTrue(text.contains("Check the connection settings"), text)
        XCTAssertFalse(text.contains("hunter2"), text)
        await vault.shutdown()
    }

    func testSQLErrorsCarryTheSQLState() async throws {
        let fixture = try await VaultFixture.make()
        _ = try await fixture.sql("DROP TABLE oauth_tokens")
        let error = await assertVaultError(.schemaOutdated) { try await fixture.vault.list() }
        XCTAssertEqual(error?.sqlState, "42P01")
        await fixture.tearDown()
    }

    func testAnInvalidSchemaNameIsRefusedOnUse() async throws {
        var configuration = VaultConfiguration(
            databaseURL: try SharedDatabase.url(), keyring: try Keyring(current: .generate()))
        configuration.schema = "public; DROP TABLE x"
        let vault = Vault(configuration: configuration)
        let error = await assertVaultError(.invalidInput) { try await vault.list() }
        XCTAssertTrue(error?.message.contains("is not allowed") ?? false, "\(String(describing: error))")
        await vault.shutdown()
    }

    func testConfigurationDescriptionRedactsTheURL() throws {
        let configuration = VaultConfiguration(
            databaseURL: "postgresql://u:hunter2@db/x", keyring: try Keyring(current: .generate()))
        XCTAssertFalse("\(configuration)".contains("hunter2"))
        XCTAssertFalse(String(reflecting: configuration).contains("hunter2"))
    }
}
