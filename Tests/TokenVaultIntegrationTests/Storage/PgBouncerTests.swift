import Foundation
import TokenVaultTesting
import XCTest

@testable import TokenVault

/// The library behind PgBouncer in transaction pooling mode (a real one, started by the tests), where consecutive
/// statements of one connection land on different server connections.
final class PgBouncerTests: DatabaseTestCase {
    private var bouncers: [TemporaryPgBouncer] = []
    private var vaults: [Vault] = []

    override func tearDown() async throws {
        for vault in vaults { await vault.shutdown() }
        vaults = []
        try await super.tearDown()
        for bouncer in bouncers { bouncer.stop() }
        bouncers = []
    }

    /// A vault shut down when the test ends.
    private func vault(_ configuration: VaultConfiguration) throws -> Vault {
        let vault = try Vault(configuration: configuration)
        vaults.append(vault)
        return vault
    }

    /// A database (migrated directly, as an operator would) and a configuration that reaches it through PgBouncer:
    /// the shared one (two server connections per database, handed out in turn), or one of its own with one server
    /// connection, on which whatever one client prepared the next one meets.
    private func setUp(
        preparedStatements: Bool = true, ownPoolOfOne: Bool = false, keyring: Keyring? = nil
    ) async throws -> (database: TestDatabase, configuration: VaultConfiguration) {
        let database = try await makeDatabase()
        let keyring = try keyring ?? Keyring(current: VaultKey.generate())
        let direct = try Vault(configuration: VaultConfiguration(databaseURL: database.url, keyring: keyring))
        try await direct.migrate()
        await direct.shutdown()
        let url: String
        if ownPoolOfOne {
            let bouncer = try TemporaryPgBouncer.start(inFrontOf: SharedDatabase.url(), poolSize: 1)
            bouncers.append(bouncer)
            url = bouncer.url(database: database.name)
        } else {
            url = try SharedPgBouncer.url(database: database.name)
        }
        var configuration = VaultConfiguration(
            databaseURL: url, keyring: keyring, refreshPolicy: .fastForTests)
        configuration.preparedStatements = preparedStatements
        return (database, configuration)
    }

    private func records(_ count: Int, prefix: String) -> [ImportRecord] {
        (0..<count).map { ImportRecord(client: "\(prefix)-\($0)", provider: "zoho_crm", tokens: sampleTokens()) }
    }

    /// Every operation of the library, several times and from concurrent tasks, so that statements of one
    /// connection meet other server connections.
    private func exerciseEverything(_ configuration: VaultConfiguration) async throws {
        let vault = try self.vault(configuration)
        let applied = try await vault.migrate()
        XCTAssertEqual(applied, [], "migrations run through the pooler too (one transaction)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for round in 0..<5 {
                        let tokens = sampleTokens()
                        try await vault.store(tokens, client: "c\(task)", provider: "zoho_crm")
                        let fetched = try await vault.fetch(client: "c\(task)", provider: "zoho_crm")
                        XCTAssertEqual(fetched.accessToken, tokens.accessToken, "task \(task), round \(round)")
                        _ = try await vault.accessToken(client: "c\(task)", provider: "zoho_crm")
                        _ = try await vault.status(client: "c\(task)", provider: "zoho_crm")
                        let has = try await vault.hasToken(client: "c\(task)", provider: "zoho_crm")
                        XCTAssertTrue(has)
                    }
                }
            }
            try await group.waitForAll()
        }
        if configuration.preparedStatements {
            XCTAssertFalse(vault.repository.pool.statements.usesNamedStatements, "the pooler was detected")
        }
        let single = try await vault.importTokens(records(1, prefix: "one"))
        XCTAssertEqual(single, 1, "one batch, one statement")
        let bulk = try await vault.importTokens(records(350, prefix: "bulk"))
        XCTAssertEqual(bulk, 350, "batches in a transaction")
        let all = try await vault.list()
        XCTAssertEqual(all.count, 8 + 1 + 350)
        var pages = 0
        try await vault.list(pageSize: 100) { _ in pages += 1 }
        XCTAssertEqual(pages, 4)
        let report = try await vault.verify(batchSize: 100)
        XCTAssertTrue(report.ok)
        XCTAssertEqual(report.rows, 359)

        var rotated = configuration
        rotated.keyring = try Keyring(current: VaultKey.generate(), previous: [configuration.keyring.current])
        let next = try self.vault(rotated)
        let rotation = try await next.rotateKeys(batchSize: 100)
        XCTAssertEqual(rotation.resealed, 359)
        XCTAssertEqual(rotation.remaining, 0)
        let verified = try await next.verify()
        XCTAssertTrue(verified.ok)
        let deleted = try await next.delete(client: "c0", provider: "zoho_crm")
        XCTAssertTrue(deleted)
        let again = try await next.delete(client: "c0", provider: "zoho_crm")
        XCTAssertFalse(again)
    }

    func testEveryOperationWorksWithUnnamedStatements() async throws {
        let (_, configuration) = try await setUp(preparedStatements: false)
        try await exerciseEverything(configuration)
    }

    func testEveryOperationWorksWhenTheVaultDetectsThePooler() async throws {
        let (_, configuration) = try await setUp()
        try await exerciseEverything(configuration)
    }

    /// A second client prepares a statement that the first left on the only server connection: 42P05. The
    /// statement did not run; the vault sends it again unnamed and uses unnamed statements from then on.
    func testASecondClientsPreparedStatementIsDetectedAndSentUnnamed() async throws {
        let (_, configuration) = try await setUp(ownPoolOfOne: true)
        let first = try vault(configuration)
        let second = try vault(configuration)
        // Twice: a new row is stored in a transaction, an existing one with the prepared audited update.
        try await first.store(sampleTokens(access: "1000.first"), client: "a", provider: "zoho_crm")
        try await first.store(sampleTokens(access: "1000.first"), client: "a", provider: "zoho_crm")
        XCTAssertTrue(first.repository.pool.statements.usesNamedStatements, "alone, it met no other client")
        try await second.store(sampleTokens(access: "1000.second"), client: "a", provider: "zoho_crm")
        XCTAssertFalse(second.repository.pool.statements.usesNamedStatements, "42P05 switched it")
        for vault in [first, second] {
            let stored = try await vault.fetch(client: "a", provider: "zoho_crm")
            XCTAssertEqual(stored.accessToken?.reveal(), "1000.second")
        }
        let rows = try await AdminSQL.query("SELECT version FROM oauth_tokens", url: configuration.databaseURL)
        XCTAssertEqual(rows, [["3"]], "each store ran exactly once")
    }

    /// The same inside a transaction (an import of several batches), which the failure aborts: the import runs its
    /// transaction once more with unnamed statements, and nothing is written twice or lost.
    func testAnImportWhoseTransactionMeetsThePoolerRunsAgain() async throws {
        let (_, configuration) = try await setUp(ownPoolOfOne: true)
        let first = try vault(configuration)
        let second = try vault(configuration)
        let single = try await first.importTokens(records(1, prefix: "first"))
        XCTAssertEqual(single, 1)
        let bulk = try await second.importTokens(records(250, prefix: "second"))
        XCTAssertEqual(bulk, 250)
        XCTAssertFalse(second.repository.pool.statements.usesNamedStatements)
        let all = try await second.list()
        XCTAssertEqual(all.count, 251)
        let report = try await second.verify()
        XCTAssertTrue(report.ok)
    }

    /// PgBouncer refuses the `options` startup parameter that carries the schema: say so, and what to do instead.
    func testASchemaIsRefusedWithWhatToDoInstead() async throws {
        var (_, configuration) = try await setUp()
        configuration.schema = "vault_schema"
        let vault = try self.vault(configuration)
        let error = await assertVaultError(.databaseConfiguration) {
            try await vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        }
        let message = error?.message ?? ""
        XCTAssertTrue(message.contains("unsupported startup parameter: options"), message)
        XCTAssertTrue(message.contains("ALTER ROLE … SET search_path = vault_schema"), message)
    }
}
