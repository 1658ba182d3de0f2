import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A server that stops answering after the vault connected (frozen with SIGSTOP: its kernel still holds the
/// connections open, so neither TCP keepalives nor PostgreSQL's own timeouts can notice) gives a clear error within
/// the vault's statement timeout, and the same vault works again once the server runs.
final class FrozenServerTests: XCTestCase {
    /// A cluster of the test's own: freezing the shared one would stall every other test.
    private var server: TemporaryPostgres?

    override func tearDown() async throws {
        if let server {
            try? server.signalServer(SIGCONT)  // also after a failure: a frozen server cannot be stopped
            server.stop()
        }
        server = nil
        try await super.tearDown()
    }

    private func startServer() throws -> TemporaryPostgres {
        let server = try TemporaryPostgres.start(port: 5441)
        self.server = server
        return server
    }

    func testAStatementToAFrozenServerFailsWithinTheTimeoutAndTheVaultRecovers() async throws {
        let server = try startServer()
        var configuration = VaultConfiguration(
            databaseURL: server.databaseURL + " connect_timeout=2", keyring: try Keyring(current: .generate()),
            maximumConnections: 1)
        configuration.statementTimeout = 2
        let vault = try Vault(configuration: configuration)
        try await vault.migrate()
        try await vault.store(sampleTokens(access: "first"), client: "a", provider: "zoho_crm")
        // Twice: an audited store's statement for a new chain differs from the one for its later events, and each
        // is prepared on first use; frozen, the store below must be stuck in its write, not in its preparation.
        try await vault.store(sampleTokens(access: "first"), client: "a", provider: "zoho_crm")

        try server.signalServer(SIGSTOP)
        var started = Date()
        let write = await assertVaultError(.timedOut) {
            try await vault.store(sampleTokens(access: "second"), client: "a", provider: "zoho_crm")
        }
        var elapsed = Date().timeIntervalSince(started)
        print("frozen server: a store failed after \(String(format: "%.2f", elapsed)) s (statementTimeout 2 s)")
        XCTAssertGreaterThanOrEqual(elapsed, 1.9)
        XCTAssertLessThan(elapsed, 4, "bounded by statementTimeout, not retried")
        let message = write?.message ?? ""
        XCTAssertTrue(message.hasPrefix("PostgreSQL did not answer within 2 s (statementTimeout)"), message)
        XCTAssertTrue(message.contains("The connection was closed"), message)
        XCTAssertTrue(message.contains("Whether its write was applied is unknown"), message)

        // The timed-out connection was given up; a new one cannot be made while the server is frozen, and
        // connect_timeout says how long that takes.
        started = Date()
        let read = await assertVaultError(.connectionFailed) {
            try await vault.fetch(client: "a", provider: "zoho_crm")
        }
        elapsed = Date().timeIntervalSince(started)
        XCTAssertLessThan(elapsed, 4, "bounded by connect_timeout")
        XCTAssertTrue(read?.message.contains("timeout expired") ?? false, "\(read!)")

        try server.signalServer(SIGCONT)
        // The same vault, without a restart: a new connection, and the store it left unsure of can be checked.
        let stored = try await vault.fetch(client: "a", provider: "zoho_crm")
        XCTAssertTrue(["first", "second"].contains(stored.accessToken?.reveal()))
        try await vault.store(sampleTokens(access: "third"), client: "a", provider: "zoho_crm")
        let latest = try await vault.fetch(client: "a", provider: "zoho_crm")
        XCTAssertEqual(latest.accessToken?.reveal(), "third")
        await vault.shutdown()
    }

    func testAReadToAFrozenServerSaysItChangedNothing() async throws {
        let server = try startServer()
        var configuration = VaultConfiguration(
            databaseURL: server.databaseURL, keyring: try Keyring(current: .generate()), maximumConnections: 1)
        configuration.statementTimeout = 1
        let vault = try Vault(configuration: configuration)
        try await vault.migrate()
        try await vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        try server.signalServer(SIGSTOP)
        let error = await assertVaultError(.timedOut) { try await vault.fetch(client: "a", provider: "zoho_crm") }
        XCTAssertTrue(error?.message.hasSuffix("It changed nothing.") ?? false, "\(error!)")
        try server.signalServer(SIGCONT)
        let stored = try await vault.fetch(client: "a", provider: "zoho_crm")
        XCTAssertNotNil(stored.accessToken)
        await vault.shutdown()
    }
}
