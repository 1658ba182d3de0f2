import Foundation
import Logging
import Synchronization
import TokenVaultTesting
import XCTest

@testable import TokenVault

/// Key rotation through the library, where races can be set up precisely.
final class RotationTests: DatabaseTestCase {
    func records(_ count: Int, prefix: String = "client") -> [ImportRecord] {
        (0..<count).map { index in
            ImportRecord(
                client: "\(prefix)-\(String(format: "%05d", index))",
                provider: index % 2 == 0 ? "zoho_crm" : "zoho_calendar",
                tokens: TokenSet(
                    accessToken: index % 7 == 0 ? nil : Secret("1000.access-\(index)"),
                    refreshToken: Secret("1000.refresh-\(index)"), expiresAt: Date().addingTimeInterval(3600),
                    metadata: ["api_domain": .string("https://www.zohoapis.eu")]))
        }
    }

    func testRotationReSealsEveryRowAndLosesNothing() async throws {
        let old = VaultKey.generate()
        let new = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: old))
        let input = records(2500)
        try await fixture.vault.importTokens(input)
        let rotating = try fixture.reopen(keyring: try Keyring(current: new, previous: [old]))
        let progress = LockedCounter()
        let report = try await rotating.rotateKeys(batchSize: 300, progress: { _ in progress.increment() })
        XCTAssertEqual(report.toReseal, 2500)
        XCTAssertEqual(report.resealed, 2500)
        XCTAssertEqual(report.remaining, 0)
        XCTAssertTrue(report.failures.isEmpty)
        XCTAssertEqual(progress.value, 9, "one progress report per batch")
        let newOnly = try fixture.reopen(keyring: try Keyring(current: new))
        let verified = try await newOnly.verify()
        XCTAssertTrue(verified.ok)
        XCTAssertEqual(verified.rowsByKeyID, [new.id.rawValue: 2500])
        for record in input.shuffled().prefix(200) {
            let stored = try await newOnly.fetch(client: record.client, provider: record.provider)
            XCTAssertEqual(stored.accessToken, record.tokens.accessToken)
            XCTAssertEqual(stored.refreshToken, record.tokens.refreshToken)
        }
        // A second run changes nothing, not even versions.
        let before = try await fixture.sql("SELECT sum(version) FROM oauth_tokens")
        let again = try await rotating.rotateKeys()
        XCTAssertEqual(again.resealed, 0)
        XCTAssertEqual(again.toReseal, 0)
        let after = try await fixture.sql("SELECT sum(version) FROM oauth_tokens")
        XCTAssertEqual(before, after)
        for vault in [rotating, newOnly] { await vault.shutdown() }
    }

    func testARowChangedBetweenReadAndWriteIsReReadNotOverwritten() async throws {
        let old = VaultKey.generate()
        let new = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: old))
        try await fixture.vault.importTokens(records(10))
        let rotating = try fixture.reopen(keyring: try Keyring(current: new, previous: [old]))
        // Read a batch, as rotate-key does…
        let page = try await rotating.repository.page(notUnder: new.id, after: nil, limit: 10)
        // …then a service with the new key stores fresh tokens for one of its rows…
        let fresh = sampleTokens(access: "1000.fresh-access", refresh: "1000.fresh-refresh")
        try await rotating.store(fresh, client: page[3].clientID, provider: page[3].provider)
        // …and the batch is written.
        var report = RotationReport(currentKeyID: new.id)
        try await KeyRotation(
            repository: rotating.repository, sealer: rotating.sealer, logging: ContextLogger(Logger(label: "test"))
        )
        .resealBatch(page, report: &report)
        XCTAssertEqual(report.resealed, 9)
        XCTAssertEqual(report.changedMeanwhile, 1)
        let stored = try await rotating.fetch(client: page[3].clientID, provider: page[3].provider)
        XCTAssertEqual(stored.accessToken, fresh.accessToken, "the newer tokens survived")
        XCTAssertEqual(stored.refreshToken, fresh.refreshToken)
        await rotating.shutdown()
    }

    func testARowRefreshedWithTheOldKeyMeanwhileIsReSealedAgain() async throws {
        let old = VaultKey.generate()
        let new = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: old))
        try await fixture.vault.importTokens(records(5))
        let rotating = try fixture.reopen(keyring: try Keyring(current: new, previous: [old]))
        let page = try await rotating.repository.page(notUnder: new.id, after: nil, limit: 5)
        // A service that still has the old key as current writes the row: version moves, key stays old.
        let replaced = sampleTokens(access: "1000.still-old-key", refresh: "1000.still-old-key-refresh")
        try await fixture.vault.store(replaced, client: page[0].clientID, provider: page[0].provider)
        var report = RotationReport(currentKeyID: new.id)
        try await KeyRotation(
            repository: rotating.repository, sealer: rotating.sealer, logging: ContextLogger(Logger(label: "test"))
        )
        .resealBatch(page, report: &report)
        XCTAssertEqual(report.resealed, 5, "the changed row was read again and re-sealed")
        let stored = try await rotating.fetch(client: page[0].clientID, provider: page[0].provider)
        XCTAssertEqual(stored.keyID, new.id)
        XCTAssertEqual(stored.refreshToken, replaced.refreshToken)
        await rotating.shutdown()
    }

    func testRowsUnderAnUnknownKeyStopTheRunBeforeAnyChange() async throws {
        let lost = VaultKey.generate()
        let old = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: lost))
        try await fixture.vault.importTokens(records(3, prefix: "lost"))
        let oldVault = try fixture.reopen(keyring: try Keyring(current: old))
        try await oldVault.importTokens(records(4, prefix: "old"))
        let rotating = try fixture.reopen(keyring: try Keyring(current: .generate(), previous: [old]))
        let error = await assertVaultError(.unknownKey) { try await rotating.rotateKeys() }
        XCTAssertTrue(error?.message.contains("3 rows under key \(lost.id)") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("Nothing was changed") ?? false)
        let keys = try await fixture.sql("SELECT key_id, count(*) FROM oauth_tokens GROUP BY key_id ORDER BY 2")
        XCTAssertEqual(keys.map { $0[1] }, ["3", "4"])
        for vault in [oldVault, rotating] { await vault.shutdown() }
    }

    func testATamperedRowIsReportedAndTheRestRotates() async throws {
        let old = VaultKey.generate()
        let new = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: old))
        try await fixture.vault.importTokens(records(20))
        _ = try await fixture.sql(
            "UPDATE oauth_tokens SET refresh_token_ciphertext = set_byte(refresh_token_ciphertext, 9, 0) WHERE client_id = 'client-00004'"
        )
        let rotating = try fixture.reopen(keyring: try Keyring(current: new, previous: [old]))
        let report = try await rotating.rotateKeys(batchSize: 6)
        XCTAssertEqual(report.resealed, 19)
        XCTAssertEqual(
            report.failures.map { "\($0.clientID)/\($0.field)/\($0.reason)" },
            ["client-00004/refresh_token/failed authentication"])
        XCTAssertEqual(report.remaining, 1)
        await rotating.shutdown()
    }

    func testDryRunCountsWithoutChanging() async throws {
        let old = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: old))
        try await fixture.vault.importTokens(records(12))
        let rotating = try fixture.reopen(keyring: try Keyring(current: .generate(), previous: [old]))
        let report = try await rotating.rotateKeys(dryRun: true)
        XCTAssertEqual(report.toReseal, 12)
        XCTAssertEqual(report.resealed, 0)
        let keys = try await fixture.sql("SELECT DISTINCT key_id FROM oauth_tokens")
        XCTAssertEqual(keys.map { $0[0] }, [old.id.rawValue])
        await rotating.shutdown()
    }

    func testShouldStopEndsAfterTheCurrentBatch() async throws {
        let old = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: old))
        try await fixture.vault.importTokens(records(50))
        let rotating = try fixture.reopen(keyring: try Keyring(current: .generate(), previous: [old]))
        let report = try await rotating.rotateKeys(batchSize: 10, shouldStop: { true })
        XCTAssertTrue(report.interrupted)
        XCTAssertEqual(report.resealed, 10)
        XCTAssertEqual(report.remaining, 40)
        let finished = try await rotating.rotateKeys(batchSize: 10)
        XCTAssertEqual(finished.resealed, 40)
        XCTAssertEqual(finished.remaining, 0)
        await rotating.shutdown()
    }
}

final class LockedCounter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
