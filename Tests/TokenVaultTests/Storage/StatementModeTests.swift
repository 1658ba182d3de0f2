import Logging
import Synchronization
import XCTest

@testable import TokenVault

/// Named and unnamed statements, the pooler's symptoms, and the settings that choose between them.
final class StatementModeTests: XCTestCase {
    func testStatementNamesCarryAHashOfTheirSQLAndFitPostgreSQLsLimit() {
        let statements = [
            TokenRepository.upsert, TokenRepository.select, TokenRepository.delete, TokenRepository.page,
            TokenRepository.pageNotUnderKey, TokenRepository.resealBatch, TokenRepository.upsertBatch,
        ]
        for statement in statements {
            XCTAssertLessThanOrEqual(statement.name.utf8.count, 63, statement.name)
            XCTAssertTrue(statement.name.hasPrefix("token_vault_"), statement.name)
        }
        XCTAssertEqual(Set(statements.map(\.name)).count, statements.count)
        let one = PreparedStatement(name: "s", sql: "SELECT 1")
        XCTAssertEqual(one.name, PreparedStatement(name: "s", sql: "SELECT 1").name, "stable across processes")
        XCTAssertNotEqual(one.name, PreparedStatement(name: "s", sql: "SELECT 2").name, "other SQL, other name")
        XCTAssertEqual(one.name.count, "s_".count + 24)
    }

    func testAPoolerSymptomOutsideATransactionSwitchesOnceAndAsksForARetry() throws {
        let logs = CapturedLogs()
        let mode = StatementMode(prepared: true, logger: ContextLogger(Logger(label: "test", factory: { _ in logs })))
        let duplicate = VaultError(.database, "prepared statement exists", sqlState: "42P05")
        XCTAssertNoThrow(try mode.recover(from: duplicate, inTransaction: false))
        XCTAssertFalse(mode.usesNamedStatements)
        XCTAssertNoThrow(
            try mode.recover(from: VaultError(.database, "missing", sqlState: "26000"), inTransaction: false))
        XCTAssertEqual(logs.messages.count, 1, "one warning per pool")
        XCTAssertTrue(logs.messages[0].contains("preparedStatements"), logs.messages[0])
    }

    func testAPoolerSymptomInsideATransactionSaysToRunAgain() {
        let mode = StatementMode(prepared: true)
        XCTAssertThrowsError(
            try mode.recover(from: VaultError(.database, "missing", sqlState: "26000"), inTransaction: true)
        ) { error in
            let error = error as? VaultError
            XCTAssertEqual(error?.sqlState, "26000")
            XCTAssertTrue(
                error?.message.contains("running the operation again works") == true, "\(String(describing: error))")
        }
        XCTAssertFalse(mode.usesNamedStatements)
    }

    func testOtherFailuresAreThrownUnchangedAndKeepNamedStatements() {
        let mode = StatementMode(prepared: true)
        let other = VaultError(.database, "syntax", sqlState: "42601")
        XCTAssertThrowsError(try mode.recover(from: other, inTransaction: false)) { error in
            XCTAssertEqual(error as? VaultError, other)
        }
        XCTAssertTrue(mode.usesNamedStatements)
    }

    func testTheEnvironmentVariableSetsTheMode() throws {
        let key = VaultKey.generate().exportBase64()
        let base = ["TOKEN_VAULT_KEY": key]
        XCTAssertTrue(try VaultConfiguration.fromEnvironment(base).preparedStatements)
        for (text, expected) in [("off", false), ("OFF", false), ("false", false), ("0", false), ("on", true)] {
            let configuration = try VaultConfiguration.fromEnvironment(
                base.merging(["TOKEN_VAULT_PREPARED_STATEMENTS": text]) { $1 })
            XCTAssertEqual(configuration.preparedStatements, expected, text)
        }
        XCTAssertThrowsError(
            try VaultConfiguration.fromEnvironment(base.merging(["TOKEN_VAULT_PREPARED_STATEMENTS": "never"]) { $1 })
        ) { error in
            XCTAssertEqual((error as? VaultError)?.code, .invalidInput)
            XCTAssertEqual(
                (error as? VaultError)?.message, "TOKEN_VAULT_PREPARED_STATEMENTS must be on or off, not 'never'.")
        }
    }

    func testTheSchemaVariableSetsTheSchema() throws {
        let base = ["TOKEN_VAULT_KEY": VaultKey.generate().exportBase64()]
        XCTAssertNil(try VaultConfiguration.fromEnvironment(base).schema)
        let configuration = try VaultConfiguration.fromEnvironment(base.merging(["TOKEN_VAULT_SCHEMA": "vault"]) { $1 })
        XCTAssertEqual(configuration.schema, "vault")
        XCTAssertTrue(configuration.description.contains("schema: vault"), configuration.description)
        for bad in ["Vault", "1vault", "vault;drop", "a b", String(repeating: "v", count: 64)] {
            XCTAssertThrowsError(
                try VaultConfiguration.fromEnvironment(base.merging(["TOKEN_VAULT_SCHEMA": bad]) { $1 })
            ) { error in
                XCTAssertEqual((error as? VaultError)?.code, .invalidInput)
                XCTAssertTrue(
                    (error as? VaultError)?.message.hasPrefix("TOKEN_VAULT_SCHEMA must be 1 to 63") == true, bad)
            }
        }
    }

    func testASchemaIsRefusedWithUnnamedStatements() throws {
        var configuration = VaultConfiguration(
            databaseURL: "", keyring: try Keyring(current: VaultKey.generate()))
        configuration.schema = "vault"
        XCTAssertNoThrow(try configuration.validate())
        configuration.preparedStatements = false
        XCTAssertThrowsError(try Vault(configuration: configuration)) { error in
            let error = error as? VaultError
            XCTAssertEqual(error?.code, .invalidInput)
            XCTAssertTrue(
                error?.message.contains("ALTER ROLE … SET search_path = vault") == true, "\(String(describing: error))")
        }
    }
}

/// Collects the messages logged through it.
final class CapturedLogs: LogHandler, Sendable {
    private let stored = Mutex<[String]>([])
    var messages: [String] { stored.withLock { $0 } }

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        stored.withLock { $0.append(event.message.description) }
    }
}
