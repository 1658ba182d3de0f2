import Foundation
import TokenVaultTesting
import XCTest

@testable import TokenVault

/// "café" precomposed and decomposed are equal Swift `String`s but different PostgreSQL rows, with different
/// sealing contexts. Everything that decides which row something belongs to must tell them apart.
final class CanonicalEquivalenceTests: DatabaseTestCase {
    let composed = "caf\u{E9}"
    let decomposed = "cafe\u{301}"

    func testTheTwoSpellingsAreEqualStringsButDifferentBytes() {
        XCTAssertEqual(composed, decomposed)
        XCTAssertFalse(composed.hasSameBytes(as: decomposed))
        XCTAssertNotEqual(RowKey(client: composed, provider: "p"), RowKey(client: decomposed, provider: "p"))
    }

    func testTheSubkeyCacheNeverServesTheOtherSpelling() {
        let cache = SubkeyCache(capacity: 2)  // one pair of slots: both land in it
        let key = VaultKey.generate()
        let stored = SealContext(field: .accessToken, provider: "zoho_crm", clientID: composed)
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 1) { subkey in
            Sealer.deriveSubkey(key: key, context: stored, into: subkey)
            cache.store(key: key, context: stored, subkey: UnsafeRawBufferPointer(subkey))
            let other = SealContext(field: .accessToken, provider: "zoho_crm", clientID: decomposed)
            XCTAssertFalse(cache.lookup(key: key, context: other, into: subkey))
            XCTAssertTrue(cache.lookup(key: key, context: stored, into: subkey))
        }
    }

    func testBothSpellingsAreStoredSealedAndOpenedAsTheirOwnRows() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(access: "1000.composed"), client: composed, provider: "zoho_crm")
        try await fixture.vault.store(sampleTokens(access: "1000.decomposed"), client: decomposed, provider: "zoho_crm")
        let first = try await fixture.vault.fetch(client: composed, provider: "zoho_crm")
        let second = try await fixture.vault.fetch(client: decomposed, provider: "zoho_crm")
        XCTAssertEqual(first.accessToken?.reveal(), "1000.composed")
        XCTAssertEqual(second.accessToken?.reveal(), "1000.decomposed")
    }

    func testImportKeepsBothSpellings() async throws {
        let fixture = try await makeFixture()
        let records = [composed, decomposed].map { client in
            ImportRecord(
                client: client, provider: "zoho_crm", tokens: sampleTokens(access: "1000.\(client.utf8.count)"))
        }
        let written = try await fixture.vault.importTokens(records)
        XCTAssertEqual(written, 2)
        let rows = try await fixture.sql("SELECT count(*) FROM oauth_tokens")
        XCTAssertEqual(rows, [["2"]])
        let tokens = try await fixture.vault.fetch(client: decomposed, provider: "zoho_crm")
        XCTAssertEqual(tokens.accessToken?.reveal(), "1000.\(decomposed.utf8.count)")
    }

    static func token(_ value: String) -> AccessToken {
        AccessToken(value: Secret(value), expiresAt: nil, scopes: nil, metadataJSON: "{}", refreshed: true)
    }

    func testConcurrentRefreshesOfTheTwoSpellingsDoNotShareAResult() async throws {
        let (composed, decomposed) = (self.composed, self.decomposed)
        let flights = RefreshFlights()
        async let first = flights.run(client: composed, provider: "zoho_crm") { () throws(VaultError) in
            try? await Task.sleep(for: .milliseconds(300))
            return Self.token("for-composed")
        }
        try await Task.sleep(for: .milliseconds(50))  // the first refresh is in flight
        let second = try await flights.run(client: decomposed, provider: "zoho_crm") { () throws(VaultError) in
            Self.token("for-decomposed")
        }
        XCTAssertEqual(second.value.reveal(), "for-decomposed", "another row's refresh result was shared")
        let firstToken = try await first
        XCTAssertEqual(firstToken.value.reveal(), "for-composed")
    }
}
