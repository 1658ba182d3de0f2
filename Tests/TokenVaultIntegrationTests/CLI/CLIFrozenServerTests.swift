import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `token-vault token` against a database that stops answering exits in bounded time, with a message that says
/// what happened and the exit code for "temporary" (75) or "unreachable" (69).
final class CLIFrozenServerTests: XCTestCase {
    private var server: TemporaryPostgres?
    private var proxy: SilentProxy?

    override func tearDown() async throws {
        proxy?.stop()
        if let server {
            try? server.signalServer(SIGCONT)  // also after a failure: a frozen server cannot be stopped
            server.stop()
        }
        server = nil
        proxy = nil
        try await super.tearDown()
    }

    /// A cluster of the test's own with a stored row, and a CLI runner pointed at it.
    private func serverWithARow() throws -> (TemporaryPostgres, CLIRunner) {
        let server = try TemporaryPostgres.start(port: 5444)
        self.server = server
        let cli = CLIRunner(databaseURL: server.databaseURL, key: VaultKey.generate().exportBase64())
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)
        let response = #"{"access_token":"1000.access","refresh_token":"1000.refresh","expires_in":3600}"#
        XCTAssertEqual(try cli.run(["put", "--client", "acme", "--provider", "zoho_crm"], stdin: response).status, 0)
        return (server, cli)
    }

    /// Connected, then silence: the statement timeout ends the wait.
    func testTokenExitsWithinTheStatementTimeoutWhenTheServerStopsAnsweringAfterConnecting() throws {
        let (server, cli) = try serverWithARow()
        let proxy = try SilentProxy(forwardingTo: "\(server.directory)/.s.PGSQL.\(server.port)")
        self.proxy = proxy
        var silent = cli
        silent.environment["DATABASE_URL"] = "host=\(proxy.directory) port=5432 user=postgres dbname=postgres"
        silent.environment["TOKEN_VAULT_STATEMENT_TIMEOUT"] = "2"
        let started = Date()
        let result = try silent.run(["token", "--client", "acme", "--provider", "zoho_crm"])
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(result.status, 75, result.stderr)
        XCTAssertTrue(result.stderr.contains("PostgreSQL did not answer within 2 s"), result.stderr)
        XCTAssertTrue(result.stderr.contains("It changed nothing."), result.stderr)
        XCTAssertTrue(result.stderr.contains("TOKEN_VAULT_STATEMENT_TIMEOUT sets the limit"), result.stderr)
        XCTAssertEqual(result.stdout, "")
        XCTAssertGreaterThanOrEqual(elapsed, 1.9)
        XCTAssertLessThan(elapsed, 5, "bounded by TOKEN_VAULT_STATEMENT_TIMEOUT")
    }

    /// Frozen before the command starts: connecting is what waits, and connect_timeout ends it.
    func testTokenExitsWithinTheConnectTimeoutWhenTheServerIsFrozen() throws {
        let (server, cli) = try serverWithARow()
        try server.signalServer(SIGSTOP)
        var frozen = cli
        frozen.environment["DATABASE_URL"] = server.databaseURL + " connect_timeout=2"
        let started = Date()
        let result = try frozen.run(["token", "--client", "acme", "--provider", "zoho_crm"])
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(result.status, 69, result.stderr)
        XCTAssertTrue(result.stderr.contains("cannot connect to PostgreSQL"), result.stderr)
        XCTAssertTrue(result.stderr.contains("timeout expired"), result.stderr)
        XCTAssertLessThan(elapsed, 5, "bounded by connect_timeout")
    }
}
