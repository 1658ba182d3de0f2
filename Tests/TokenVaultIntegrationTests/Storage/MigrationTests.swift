import TokenVault
import TokenVaultTesting
import XCTest

final class MigrationTests: DatabaseTestCase {
    func testMigrateTwiceIsANoOp() async throws {
        let fixture = try await makeFixture()
        let again = try await fixture.vault.migrate()
        XCTAssertEqual(again, [])
        let versions = try await fixture.sql("SELECT version FROM token_vault_migrations ORDER BY version")
        XCTAssertEqual(versions.map { $0[0] }, ["1", "2", "3", "4", "5", "6"])
    }

    /// `ping()`: fine on a current schema, `.schemaOutdated` before `migrate()` or on an older schema,
    /// `.connectionFailed` when the database cannot be reached.
    func testPingTellsWhetherTheVaultCanServe() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.ping()
        let database = try await makeDatabase()
        let fresh = try Vault(
            configuration: VaultConfiguration(databaseURL: database.url, keyring: fixture.keyring))
        let error = await assertVaultError(.schemaOutdated) { try await fresh.ping() }
        XCTAssertTrue(error?.message.contains("run migrate()") ?? false, "\(String(describing: error))")
        try await fresh.migrate()
        try await fresh.ping()
        await fresh.shutdown()
        let nowhere = try Vault(
            configuration: VaultConfiguration(
                databaseURL: "postgresql:///nowhere?host=/nonexistent&connect_timeout=2", keyring: fixture.keyring))
        await assertVaultError(.connectionFailed) { try await nowhere.ping() }
        await nowhere.shutdown()
    }

    /// A database migrated by an earlier version (no refresh leases yet): reads still work, a refresh says to run
    /// migrate, and migrate applies only the new migration.
    func testARefreshOnASchemaWithoutLeasesAsksForMigrate() async throws {
        let endpoint = try FakeTokenEndpoint.start()
        defer { endpoint.stop() }
        endpoint.addRefreshToken("rt-upgrade")
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await AdminSQL.execute(
            """
            DROP TABLE token_vault_refresh_leases, token_vault_fallback_refreshes;
            ALTER TABLE oauth_tokens DROP COLUMN last_refresh_failed_at;
            DELETE FROM token_vault_migrations WHERE version = 3
            """,
            url: fixture.database.url)
        try await fixture.vault.store(expiredTokens(refresh: "rt-upgrade"), client: "a", provider: "zoho_crm")
        try await fixture.vault.store(sampleTokens(access: "1000.valid"), client: "b", provider: "zoho_crm")
        let valid = try await fixture.vault.accessToken(client: "b", provider: "zoho_crm")
        XCTAssertEqual(valid.value.reveal(), "1000.valid")
        let error = await assertVaultError(.schemaOutdated) {
            try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(error?.message.contains("migrate()") ?? false, "\(String(describing: error))")
        XCTAssertEqual(endpoint.startedCount, 0, "the provider was not called")
        let applied = try await fixture.vault.migrate()
        XCTAssertEqual(applied, [3])
        let refreshed = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        XCTAssertTrue(refreshed.refreshed)
    }

    func testConcurrentMigrationsFromManyInstancesApplyOnce() async throws {
        let database = try await makeDatabase()
        let keyring = try Keyring(current: .generate())
        let vaults = try (0..<6).map { _ in
            try Vault(configuration: VaultConfiguration(databaseURL: database.url, keyring: keyring))
        }
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for vault in vaults { group.addTask { try await vault.migrate() } }
            return try await group.reduce(into: [[Int]]()) { $0.append($1) }
        }
        XCTAssertEqual(applied.filter { !$0.isEmpty }, [[1, 2, 3, 4, 5, 6]])
        for vault in vaults { await vault.shutdown() }
    }

    func testTableHasExactlyTheDocumentedColumns() async throws {
        let fixture = try await makeFixture()
        let columns = try await fixture.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'oauth_tokens' ORDER BY ordinal_position"
        )
        XCTAssertEqual(
            columns.map { $0[0]! },
            [
                "id", "client_id", "provider", "access_token_ciphertext", "access_token_nonce",
                "refresh_token_ciphertext", "refresh_token_nonce", "key_id", "token_expiry", "scopes", "metadata",
                "created_at", "updated_at", "version",
                // Migration 2: refresh bookkeeping.
                "needs_reauthorization", "last_refresh_error", "last_refreshed_at", "refresh_history",
                // Migration 3: refresh leases.
                "last_refresh_failed_at",
                // Migration 4: each account's own accounts server.
                "accounts_server",
                // Migration 6: the head of the row's audit chain.
                "audit_seq", "audit_digest", "audit_mac_key_id", "audit_mac",
            ])
        let unique = try await fixture.sql(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'oauth_tokens' AND indexdef LIKE '%UNIQUE%(client_id, provider)%'"
        )
        XCTAssertEqual(unique.count, 1)
    }

    func testUsingTheVaultBeforeMigratingSaysToMigrate() async throws {
        let database = try await makeDatabase()
        let vault = try Vault(
            configuration: VaultConfiguration(databaseURL: database.url, keyring: try Keyring(current: .generate())))
        let error = await assertVaultError(.schemaOutdated) { try await vault.fetch(client: "a", provider: "b") }
        XCTAssertTrue(error?.message.contains("migrate()") ?? false, "\(String(describing: error))")
        await vault.shutdown()
    }

    /// A configured schema that does not exist yet: migrate() creates it and puts the tables there; before that,
    /// ping() says to migrate.
    func testMigrateCreatesTheConfiguredSchema() async throws {
        let database = try await makeDatabase()
        var configuration = VaultConfiguration(databaseURL: database.url, keyring: try Keyring(current: .generate()))
        configuration.schema = "tenant_vault"
        let vault = try Vault(configuration: configuration)
        addCleanup { await vault.shutdown() }
        await assertVaultError(.schemaOutdated) { try await vault.ping() }
        let applied = try await vault.migrate()
        XCTAssertFalse(applied.isEmpty)
        try await vault.ping()
        try await vault.store(sampleTokens(), client: "a", provider: "p")
        let tables = try await AdminSQL.query(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'oauth_tokens'", url: database.url)
        XCTAssertEqual(tables, [["tenant_vault"]])
        let again = try await vault.migrate()
        XCTAssertEqual(again, [], "a second migrate is a no-op")
    }

    /// A role that may not create schemas gets the statement an administrator runs, not PostgreSQL's bare error.
    func testAMissingSchemaTheRoleMayNotCreateIsExplained() async throws {
        let database = try await makeDatabase()
        let role = "tv_noschema_\(UInt32.random(in: 0...UInt32.max))"
        try await AdminSQL.execute(
            "CREATE ROLE \(role) LOGIN; REVOKE CREATE ON DATABASE \"\(database.name)\" FROM PUBLIC", url: database.url)
        addCleanup { try? await AdminSQL.execute("DROP OWNED BY \(role); DROP ROLE \(role)", url: database.url) }
        var configuration = VaultConfiguration(
            databaseURL: database.url(user: role), keyring: try Keyring(current: .generate()))
        configuration.schema = "tenant_vault"
        let vault = try Vault(configuration: configuration)
        addCleanup { await vault.shutdown() }
        let error = await assertVaultError(.databaseConfiguration) { try await vault.migrate() }
        XCTAssertEqual(error?.sqlState, "42501")
        XCTAssertTrue(
            error?.message.contains("CREATE SCHEMA tenant_vault AUTHORIZATION") == true, "\(String(describing: error))")
    }
}
