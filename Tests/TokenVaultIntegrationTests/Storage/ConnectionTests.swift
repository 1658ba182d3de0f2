import TokenVault
import TokenVaultTesting
import XCTest

final class ConnectionTests: DatabaseTestCase {
    func testADroppedConnectionIsReplacedAndTheReadRetried() async throws {
        let fixture = try await makeFixture(maximumConnections: 1)
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
    }

    func testUnreachableDatabaseSaysSoWithoutThePassword() async throws {
        let vault = try Vault(
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

    /// A server that answers and refuses the settings (an unknown database or role; likewise a wrong password or a
    /// certificate that does not verify) is a configuration error, not "unreachable": retrying will not help.
    func testRefusedSettingsAreAConfigurationErrorNotUnreachable() async throws {
        let server = try SharedDatabase.url()
        for (url, named) in [
            (TestDatabase.url(server, database: "token_vault_no_such_database"), "token_vault_no_such_database"),
            (server + " user=token_vault_no_such_role", "token_vault_no_such_role"),
        ] where !(named.hasSuffix("role") && server.hasPrefix("postgres")) {
            let vault = try Vault(
                configuration: VaultConfiguration(databaseURL: url, keyring: Keyring(current: .generate())))
            let error = await assertVaultError(.databaseConfiguration) { try await vault.list() }
            XCTAssertTrue(error?.message.contains("PostgreSQL refused the connection settings") ?? false, "\(error!)")
            XCTAssertTrue(error?.message.contains(named) ?? false, "\(error!)")
            await vault.shutdown()
        }
    }

    func testSQLErrorsCarryTheSQLState() async throws {
        let fixture = try await makeFixture()
        _ = try await fixture.sql("DROP TABLE oauth_tokens")
        let error = await assertVaultError(.schemaOutdated) { try await fixture.vault.list() }
        XCTAssertEqual(error?.sqlState, "42P01")
    }

    func testAnInvalidSchemaNameIsRefusedWhenTheVaultIsMade() async throws {
        var configuration = VaultConfiguration(
            databaseURL: try SharedDatabase.url(), keyring: try Keyring(current: .generate()))
        configuration.schema = "public; DROP TABLE x"
        XCTAssertThrowsError(try Vault(configuration: configuration)) { error in
            XCTAssertEqual((error as? VaultError)?.code, .invalidInput)
            XCTAssertTrue("\(error)".contains("is not allowed"), "\(error)")
        }
    }

    func testOutOfRangeConfigurationValuesAreRefusedNotTrapped() throws {
        let keyring = try Keyring(current: .generate())
        var cases: [(VaultConfiguration, String)] = []
        func with(_ change: (inout VaultConfiguration) -> Void, _ expected: String) {
            var configuration = VaultConfiguration(databaseURL: "", keyring: keyring)
            change(&configuration)
            cases.append((configuration, expected))
        }
        with({ $0.maximumConnections = 0 }, "maximumConnections must be 1 to 1000")
        with({ $0.connectionWaitTimeout = 0 }, "connectionWaitTimeout must be 0.001 to 3600 seconds")
        with({ $0.connectionWaitTimeout = .nan }, "connectionWaitTimeout must be 0.001 to 3600 seconds")
        with({ $0.refreshMargin = .nan }, "refreshMargin must be 0 to 86399 seconds")
        with({ $0.refreshMargin = -1 }, "refreshMargin must be 0 to 86399 seconds")
        with({ $0.refreshPolicy.requestTimeout = .infinity }, "refreshPolicy.requestTimeout must be 0 to 3600")
        with({ $0.refreshPolicy.requestTimeout = 0 }, "refreshPolicy.requestTimeout must be more than 0")
        with({ $0.refreshPolicy.waitTimeout = .nan }, "refreshPolicy.waitTimeout must be 0 to 3600")
        with({ $0.refreshPolicy.attempts = 0 }, "refreshPolicy.attempts must be 1 to 20")
        with(
            {
                var provider = OAuthProvider(
                    name: "p", tokenURL: URL(string: "https://example.invalid/token")!, clientID: "id",
                    clientSecret: Secret("secret"))
                provider.refreshRateLimit = .init(count: 0, window: 600)
                $0.register(provider)
            }, "the refresh rate limit of provider 'p'")
        for (configuration, expected) in cases {
            XCTAssertThrowsError(try Vault(configuration: configuration)) { error in
                XCTAssertEqual((error as? VaultError)?.code, .invalidInput)
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
    }

    func testConfigurationDescriptionRedactsTheURL() throws {
        let configuration = VaultConfiguration(
            databaseURL: "postgresql://u:hunter2@db/x", keyring: try Keyring(current: .generate()))
        XCTAssertFalse("\(configuration)".contains("hunter2"))
        XCTAssertFalse(String(reflecting: configuration).contains("hunter2"))
    }
}
