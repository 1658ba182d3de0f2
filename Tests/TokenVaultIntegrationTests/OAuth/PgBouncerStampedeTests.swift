import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// The multi-process refresh stampede (four `token-vault-test-stampede` processes of fifty callers each) through
/// PgBouncer in transaction pooling mode, two server connections per database: still exactly one provider call.
final class PgBouncerStampedeTests: DatabaseTestCase {
    func testWithUnnamedStatements() async throws {
        try await stampede(extraEnvironment: ["TOKEN_VAULT_PREPARED_STATEMENTS": "off"])
    }

    func testWhenTheVaultsDetectThePooler() async throws {
        try await stampede(extraEnvironment: [:])
    }

    private func stampede(extraEnvironment: [String: String]) async throws {
        try await assertStampedeMakesOneRefresh(
            databaseURL: { try SharedPgBouncer.url(database: $0.database.name) }, extraEnvironment: extraEnvironment)
    }
}
