import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// A fresh database, a keyring and a migrated vault for one test.
struct VaultFixture {
    let database: TestDatabase
    let keyring: Keyring
    let vault: Vault

    static func make(
        keyring: Keyring? = nil, maximumConnections: Int = 4, refreshMargin: TimeInterval = 300,
        providers: [OAuthProvider] = [], refreshPolicy: RefreshPolicy = .fastForTests
    ) async throws -> VaultFixture {
        let keyring = try keyring ?? Keyring(current: VaultKey.generate())
        let database = try await TestDatabase.create()
        do {
            let vault = try Vault(
                configuration: VaultConfiguration(
                    databaseURL: database.url, keyring: keyring, maximumConnections: maximumConnections,
                    refreshMargin: refreshMargin, providers: providers, refreshPolicy: refreshPolicy))
            do {
                try await vault.migrate()
            } catch {
                await vault.shutdown()
                throw error
            }
            return VaultFixture(database: database, keyring: keyring, vault: vault)
        } catch {
            await database.drop()  // nobody else will: the fixture was never made
            throw error
        }
    }

    /// Another vault on the same database (a new connection pool, possibly other keys).
    func reopen(keyring: Keyring? = nil) throws -> Vault {
        var configuration = vault.configuration
        configuration.keyring = keyring ?? self.keyring
        return try Vault(configuration: configuration)
    }

    func tearDown() async {
        await vault.shutdown()
        await database.drop()
    }

    func sql(_ query: String) async throws -> [[String?]] {
        try await AdminSQL.query(query, url: database.url)
    }
}

/// A test case whose fixtures and databases are cleaned up when each test ends, also when it throws or fails
/// part-way. (XCTest on Linux runs `tearDown()` after a test that threw; cleanup written at the end of a test body
/// would not run then.)
class DatabaseTestCase: XCTestCase {
    private var cleanups: [() async -> Void] = []

    override func tearDown() async throws {
        let pending = cleanups
        cleanups = []
        for cleanup in pending.reversed() { await cleanup() }
        try await super.tearDown()
    }

    /// A ``VaultFixture`` that is torn down (vault shut down, database dropped) when the test ends.
    func makeFixture(
        keyring: Keyring? = nil, maximumConnections: Int = 4, refreshMargin: TimeInterval = 300,
        providers: [OAuthProvider] = [], refreshPolicy: RefreshPolicy = .fastForTests
    ) async throws -> VaultFixture {
        let fixture = try await VaultFixture.make(
            keyring: keyring, maximumConnections: maximumConnections, refreshMargin: refreshMargin,
            providers: providers, refreshPolicy: refreshPolicy)
        cleanups.append { await fixture.tearDown() }
        return fixture
    }

    /// Runs `cleanup` when the test ends (before the fixtures made earlier are torn down).
    func addCleanup(_ cleanup: @escaping () async -> Void) {
        cleanups.append(cleanup)
    }

    /// A fresh database on the shared test server, dropped when the test ends.
    func makeDatabase() async throws -> TestDatabase {
        let database = try await TestDatabase.create()
        cleanups.append { await database.drop() }
        return database
    }
}

func sampleTokens(
    access: String = "1000.\(UUID().uuidString).access", refresh: String = "1000.\(UUID().uuidString).refresh",
    expiresIn: TimeInterval = 3600
) -> TokenSet {
    TokenSet(
        accessToken: Secret(access), refreshToken: Secret(refresh), expiresAt: Date().addingTimeInterval(expiresIn),
        scopes: "ZohoCRM.modules.ALL", metadata: ["api_domain": .string("https://www.zohoapis.eu")])
}

/// Asserts that `body` throws a `VaultError` with `code`, and returns it for further checks.
@discardableResult
func assertVaultError<T>(
    _ code: VaultError.Code, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> T
) async -> VaultError? {
    do {
        _ = try await body()
        XCTFail("expected a \(code) error, got success", file: file, line: line)
    } catch let error as VaultError {
        XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
        return error
    } catch {
        XCTFail("expected a VaultError \(code), got \(error)", file: file, line: line)
    }
    return nil
}

extension RefreshPolicy {
    /// Short timeouts and backoffs, so that retry tests take milliseconds.
    static let fastForTests = RefreshPolicy(
        requestTimeout: 2, attempts: 3, initialBackoff: 0.01, maximumBackoff: 0.05, waitTimeout: 20)
}

extension FakeTokenEndpoint {
    /// A Zoho-style provider pointing at this endpoint.
    func zoho(_ name: String = "zoho_crm", fallback: String? = nil) -> OAuthProvider {
        .zoho(
            name, clientID: clientID, clientSecret: Secret(clientSecret), accountsURL: baseURL,
            fallbackRefreshToken: fallback.map(Secret.init))
    }
}

/// Tokens whose access token has expired, with `refresh` as the refresh token.
func expiredTokens(refresh: String, access: String = "1000.expired-access") -> TokenSet {
    TokenSet(
        accessToken: Secret(access), refreshToken: Secret(refresh), expiresAt: Date().addingTimeInterval(-60),
        metadata: ["api_domain": .string("https://www.zohoapis.com")])
}
