import Foundation
import Logging
import Synchronization
import TokenVault
import TokenVaultTesting
import XCTest

/// A service's request context (swift-log's task-local logger) on the vault's log lines for that request.
final class CallerContextLoggingTests: DatabaseTestCase {
    var endpoint: FakeTokenEndpoint!

    override func setUp() async throws {
        endpoint = try FakeTokenEndpoint.start()
    }

    override func tearDown() async throws {
        endpoint.stop()
        try await super.tearDown()
    }

    /// A vault made with its own logger: every line of a refresh made for a request (the retry warning of the token
    /// endpoint, the refresh itself) carries the request's id; a call outside the request's scope carries none.
    func testARequestIdBoundByTheCallerIsOnEveryLineOfItsRefresh() async throws {
        let lines = LogLines()
        endpoint.addRefreshToken("rt-ctx")
        endpoint.enqueue(.status(503))
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        var configuration = fixture.vault.configuration
        configuration.keyring = fixture.keyring
        let vault = try Vault(configuration: configuration, logger: lines.logger(label: "vault"))
        addCleanup { await vault.shutdown() }
        try await vault.store(expiredTokens(refresh: "rt-ctx"), client: "a", provider: "zoho_crm")
        XCTAssertEqual(lines.all.last?.metadata["request.id"], nil, "outside a request: no request id")
        let before = lines.all.count

        let token = try await withLogger(mergingMetadata: ["request.id": "req-42"]) { _ in
            try await vault.accessToken(client: "a", provider: "zoho_crm")
        }
        XCTAssertTrue(token.refreshed)
        let during = Array(lines.all.dropFirst(before))
        XCTAssertTrue(during.contains { $0.level == .warning }, "the 503 was retried: \(during)")
        XCTAssertTrue(during.contains { $0.message.contains("refreshed") }, "\(during)")
        for line in during {
            XCTAssertEqual(line.metadata["request.id"], "req-42", "\(line)")
            XCTAssertEqual(line.label, "vault", "the vault's own logger, with the request's metadata added")
        }
    }

    /// A vault made without a logger logs to the task-local logger a `withLogger` scope bound, and nowhere
    /// outside one.
    func testAVaultWithoutALoggerLogsToTheCallersTaskLocalLogger() async throws {
        let lines = LogLines()
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "quiet", provider: "p")
        XCTAssertTrue(lines.all.isEmpty)

        _ = try await withLogger(lines.logger(label: "service")) { _ in
            try await withLogger(mergingMetadata: ["request.id": "req-7"]) { _ in
                try await fixture.vault.store(sampleTokens(), client: "acme", provider: "p")
            }
        }
        let stored = try XCTUnwrap(lines.all.first { $0.message == "stored tokens" })
        XCTAssertEqual(stored.label, "service")
        XCTAssertEqual(stored.metadata["request.id"], "req-7")
        XCTAssertEqual(stored.metadata["token_vault.client"], "acme")
        XCTAssertFalse(lines.all.contains { $0.metadata["token_vault.client"] == "quiet" })
    }
}
