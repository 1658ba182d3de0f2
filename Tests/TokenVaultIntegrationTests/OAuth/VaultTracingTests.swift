import Foundation
import InMemoryTracing
import TokenVault
import TokenVaultTesting
import Tracing
import XCTest

/// Spans through swift-distributed-tracing's in-memory tracer: one per refresh, one per database call under it,
/// with the row's names and no token.
final class VaultTracingTests: DatabaseTestCase {
    func testARefreshIsASpanWithItsDatabaseCallsUnderIt() async throws {
        let endpoint = try FakeTokenEndpoint.start()
        defer { endpoint.stop() }
        endpoint.addRefreshToken("rt-trace")
        let tracer = InMemoryTracer()
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        var configuration = fixture.vault.configuration
        configuration.tracer = tracer
        let vault = try Vault(configuration: configuration)
        try await vault.store(expiredTokens(refresh: "rt-trace"), client: "traced", provider: "zoho_crm")
        let token = try await vault.accessToken(client: "traced", provider: "zoho_crm")
        XCTAssertTrue(token.refreshed)
        await vault.shutdown()

        let spans = tracer.finishedSpans
        let refresh = try XCTUnwrap(spans.first { $0.operationName == "token_vault.refresh" }, "\(spans)")
        XCTAssertEqual(refresh.attributes["token_vault.client"]?.toSpanAttribute(), "traced")
        XCTAssertEqual(refresh.attributes["token_vault.provider"]?.toSpanAttribute(), "zoho_crm")
        XCTAssertEqual(refresh.attributes["token_vault.refreshed"]?.toSpanAttribute(), true)
        let children = spans.filter { $0.operationName == "token_vault.db" && $0.parentSpanID == refresh.spanID }
        XCTAssertGreaterThanOrEqual(children.count, 3, "claim, count, write: \(spans.map(\.operationName))")
        XCTAssertTrue(children.allSatisfy { $0.traceID == refresh.traceID })
        XCTAssertGreaterThan(
            spans.filter { $0.operationName == "token_vault.db" }.count, children.count,
            "the store and the first read are database spans of their own")
        let everything = "\(spans.map { "\($0.attributes)" })"
        XCTAssertFalse(everything.contains("rt-trace") || everything.contains(token.value.reveal()), everything)
    }
}
