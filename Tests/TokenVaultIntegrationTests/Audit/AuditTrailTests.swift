import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// Events written by real changes: what each records, in the same transaction as the change.
final class AuditTrailTests: DatabaseTestCase {
    var endpoint: FakeTokenEndpoint!

    override func setUp() async throws {
        endpoint = try FakeTokenEndpoint.start()
    }

    override func tearDown() async throws {
        endpoint.stop()
        try await super.tearDown()
    }

    func kinds(_ vault: Vault, client: String) async throws -> [String] {
        try await vault.auditEvents(AuditFilter(client: client)).map(\.kind.rawValue)
    }

    func testPutRefreshFailuresDeleteAndVerifyEachLeaveTheirEvent() async throws {
        endpoint.addRefreshToken("rt-good")
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        let vault = fixture.vault
        try await vault.store(expiredTokens(refresh: "rt-good"), client: "good", provider: "zoho_crm")
        let token = try await vault.accessToken(client: "good", provider: "zoho_crm")
        XCTAssertTrue(token.refreshed)
        try await vault.store(expiredTokens(refresh: "rt-unknown"), client: "refused", provider: "zoho_crm")
        await assertVaultError(.needsReauthorization) {
            try await vault.accessToken(client: "refused", provider: "zoho_crm")
        }
        endpoint.addRefreshToken("rt-flaky")
        endpoint.enqueue(.status(500), .status(500), .status(500))
        try await vault.store(expiredTokens(refresh: "rt-flaky"), client: "flaky", provider: "zoho_crm")
        await assertVaultError(.providerError) { try await vault.accessToken(client: "flaky", provider: "zoho_crm") }
        endpoint.enqueue(.errorWith200("invalid_request"))
        await assertVaultError(.providerError) { try await vault.accessToken(client: "flaky", provider: "zoho_crm") }
        let deleted = try await vault.delete(client: "good", provider: "zoho_crm")
        XCTAssertTrue(deleted)
        _ = try await vault.verify()

        let good = try await vault.auditEvents(AuditFilter(client: "good"))
        XCTAssertEqual(good.map(\.kind), [.stored, .refreshed, .deleted])
        XCTAssertEqual(good.map(\.sequence), [1, 2, 3])
        XCTAssertTrue(good.allSatisfy { $0.keyID == fixture.keyring.current.id && $0.outcome == "ok" })
        XCTAssertEqual(good[0].chain, "row:4:good/zoho_crm")
        XCTAssertEqual(good[0].actor.pid, ProcessInfo.processInfo.processIdentifier)
        XCTAssertFalse(good[0].actor.host.isEmpty)
        XCTAssertEqual(good[0].macKeyID, fixture.keyring.current.id)

        let refused = try await vault.auditEvents(AuditFilter(client: "refused"))
        XCTAssertEqual(refused.map(\.kind), [.stored, .needsReauthorization])
        XCTAssertTrue(refused[1].detailsJSON.contains("\"provider_error\":\"invalid_code\""), refused[1].detailsJSON)
        XCTAssertEqual(refused[1].outcome, "needsReauthorization")

        let flaky = try await vault.auditEvents(AuditFilter(client: "flaky"))
        XCTAssertEqual(flaky.map(\.kind), [.stored, .refreshFailed, .refreshFailed])
        XCTAssertEqual(flaky[1].outcome, "providerError")
        XCTAssertTrue(flaky[1].detailsJSON.contains("\"attempts\":3"), flaky[1].detailsJSON)
        XCTAssertTrue(flaky[2].detailsJSON.contains("\"provider_error\":\"invalid_request\""), flaky[2].detailsJSON)

        let vaultChain = try await vault.auditEvents().filter { $0.chain == AuditEvent.vaultChain }
        XCTAssertEqual(vaultChain.map(\.kind), [.verified])
        XCTAssertTrue(vaultChain[0].detailsJSON.contains("\"rows\":2"), vaultChain[0].detailsJSON)

        // No secret anywhere in the trail.
        let dump = try await fixture.sql("SELECT t::text FROM token_vault_audit_events t").map { $0[0] ?? "" }
        for secret in ["rt-good", "rt-unknown", "rt-flaky", token.value.reveal(), "1000.expired-access"] {
            XCTAssertFalse(dump.contains { $0.contains(secret) }, "a secret is in the audit trail")
        }
        let report = try await vault.verifyAudit()
        XCTAssertTrue(report.ok, "\(report.problems)")
        XCTAssertEqual(report.events, 9)
        XCTAssertEqual(report.unauthenticated, 0)
    }

    func testExchangeAndRotationAndDecryptFailureAreRecorded() async throws {
        endpoint.addAuthorizationCode("code-1")
        let old = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: old), providers: [endpoint.zoho()])
        try await fixture.vault.exchange(code: Secret("code-1"), client: "x", provider: "zoho_crm")
        for client in ["r1", "r2", "r3"] {
            try await fixture.vault.store(sampleTokens(), client: client, provider: "zoho_crm")
        }
        let new = VaultKey.generate()
        let rotating = try fixture.reopen(keyring: try Keyring(current: new, previous: [old]))
        defer { Task { await rotating.shutdown() } }
        let rotation = try await rotating.rotateKeys(batchSize: 2)
        XCTAssertEqual(rotation.resealed, 4)
        let batches = try await rotating.auditEvents().filter { $0.kind == .resealed }
        XCTAssertEqual(batches.count, 2)
        XCTAssertEqual(batches.map(\.keyID), [new.id, new.id])
        XCTAssertTrue(batches[0].detailsJSON.contains("\"\(old.id)\":2"), batches[0].detailsJSON)
        XCTAssertEqual(batches.map(\.macKeyID), [new.id, new.id])
        let exchanged = try await kinds(rotating, client: "x")
        XCTAssertEqual(exchanged, ["exchanged"])

        _ = try await fixture.sql(
            """
            UPDATE oauth_tokens SET access_token_ciphertext = set_byte(access_token_ciphertext, 20,
                get_byte(access_token_ciphertext, 20) # 1) WHERE client_id = 'r1'
            """)
        await assertVaultError(.authenticationFailed) { try await rotating.fetch(client: "r1", provider: "zoho_crm") }
        let failed = try await rotating.auditEvents(AuditFilter(client: "r1")).last
        XCTAssertEqual(failed?.kind, .decryptFailed)
        XCTAssertEqual(failed?.detailsJSON, #"{"field":"access_token","reason":"failed authentication"}"#)
        // Both keys verify the trail; events under the old key are checked with it as a previous key.
        let report = try await rotating.verifyAudit()
        XCTAssertTrue(report.ok, "\(report.problems)")
        XCTAssertEqual(report.unauthenticated, 0)
    }

    /// An event exists exactly when its change committed: a change whose event cannot be written is not made.
    func testAChangeWhoseEventFailsIsNotMade() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(access: "1000.first"), client: "a", provider: "zoho_crm")
        _ = try await fixture.sql(
            "ALTER TABLE token_vault_audit_events ADD CONSTRAINT test_refuse CHECK (kind NOT IN ('stored', 'deleted')) NOT VALID"
        )
        await assertVaultError(.database) {
            try await fixture.vault.store(sampleTokens(access: "1000.second"), client: "a", provider: "zoho_crm")
        }
        await assertVaultError(.database) { try await fixture.vault.delete(client: "a", provider: "zoho_crm") }
        let stored = try await fixture.vault.fetch(client: "a", provider: "zoho_crm")
        XCTAssertEqual(stored.accessToken?.reveal(), "1000.first")
        let kinds = try await kinds(fixture.vault, client: "a")
        XCTAssertEqual(kinds, ["stored"])
        let report = try await fixture.vault.verifyAudit()
        XCTAssertTrue(report.ok)
    }

    /// Two vaults (two processes) writing the same rows at once: each has a stale idea of the chain's head, and
    /// every write still lands as exactly one event in an intact chain.
    func testConcurrentWritersOfOneRowKeepItsChainIntact() async throws {
        let fixture = try await makeFixture()
        let other = try fixture.reopen()
        defer { Task { await other.shutdown() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, vault) in [fixture.vault, other].enumerated() {
                for worker in 0..<4 {
                    group.addTask {
                        for _ in 0..<15 {
                            try await vault.store(sampleTokens(), client: "shared", provider: "zoho_crm")
                            try await vault.store(
                                sampleTokens(), client: "own-\(index)-\(worker)", provider: "zoho_crm")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let shared = try await fixture.vault.auditEvents(AuditFilter(client: "shared"))
        XCTAssertEqual(shared.map(\.sequence), Array(1...120))
        let report = try await fixture.vault.verifyAudit()
        XCTAssertTrue(report.ok, "\(report.problems)")
        XCTAssertEqual(report.events, 240)
        XCTAssertEqual(report.chains, 9)
    }

    /// An import records a `stored` event in each row's chain, and one for the whole import in the chain `vault`,
    /// in its transaction.
    func testAnImportRecordsEachRow() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "existing", provider: "zoho_crm")
        let records = ["existing", "new-1", "new-2", "new-1"].map {
            ImportRecord(client: $0, provider: "zoho_crm", tokens: sampleTokens())
        }
        let written = try await fixture.vault.importTokens(records)
        XCTAssertEqual(written, 3)
        let existing = try await fixture.vault.auditEvents(AuditFilter(client: "existing"))
        XCTAssertEqual(existing.map(\.sequence), [1, 2])
        XCTAssertEqual(existing.last?.detailsJSON, #"{"source":"import"}"#)
        for client in ["new-1", "new-2"] {
            let events = try await fixture.vault.auditEvents(AuditFilter(client: client))
            XCTAssertEqual(events.map(\.kind), [.stored], client)
        }
        let summary = try await fixture.vault.auditEvents().filter { $0.chain == AuditEvent.vaultChain }
        XCTAssertEqual(summary.map(\.detailsJSON), [#"{"rows":3,"source":"import"}"#])
        let many = (0..<2500).map { ImportRecord(client: "bulk-\($0)", provider: "zoho_crm", tokens: sampleTokens()) }
        let bulk = try await fixture.vault.importTokens(many)
        XCTAssertEqual(bulk, 2500)
        let report = try await fixture.vault.verifyAudit()
        XCTAssertTrue(report.ok, "\(report.problems)")
        XCTAssertEqual(report.events, 2 + 2 + 1 + 2500 + 1)
        XCTAssertEqual(report.rowsWithoutChain, 0)
    }

    /// A row keeps its chain's head; a delete moves it to `token_vault_audit_heads` (also with the audit off), and
    /// the row stored again takes it back: the chain goes on from where it was, and verifies throughout.
    func testAChainOutlivesItsRowAndContinuesWhenTheRowIsStoredAgain() async throws {
        let fixture = try await makeFixture()
        let vault = fixture.vault
        func head() async throws -> [[String?]] {
            try await fixture.sql(
                """
                SELECT 'row', audit_seq::text FROM oauth_tokens WHERE client_id = 'c'
                UNION ALL SELECT 'table', seq::text FROM token_vault_audit_heads WHERE chain = 'row:1:c/zoho_crm'
                """)
        }
        try await vault.store(sampleTokens(), client: "c", provider: "zoho_crm")
        try await vault.store(sampleTokens(), client: "c", provider: "zoho_crm")
        var location = try await head()
        XCTAssertEqual(location, [["row", "2"]])
        let deleted = try await vault.delete(client: "c", provider: "zoho_crm")
        XCTAssertTrue(deleted)
        location = try await head()
        XCTAssertEqual(location, [["table", "3"]], "the head outlives the row")
        var report = try await vault.verifyAudit()
        XCTAssertTrue(report.ok, "\(report.problems)")
        XCTAssertEqual(report.rowsWithoutChain, 0)

        // Stored again by another instance (no cached head), then deleted and stored with the audit off.
        let other = try fixture.reopen()
        defer { Task { await other.shutdown() } }
        try await other.store(sampleTokens(), client: "c", provider: "zoho_crm")
        location = try await head()
        XCTAssertEqual(location, [["row", "4"]], "the new row takes its chain's head back")
        var configuration = vault.configuration
        configuration.audit.enabled = false
        let unaudited = try Vault(configuration: configuration)
        defer { Task { await unaudited.shutdown() } }
        let deletedUnaudited = try await unaudited.delete(client: "c", provider: "zoho_crm")
        XCTAssertTrue(deletedUnaudited)
        location = try await head()
        XCTAssertEqual(location, [["table", "4"]], "a delete without the audit keeps the head too")
        try await unaudited.store(sampleTokens(), client: "c", provider: "zoho_crm")
        location = try await head()
        XCTAssertEqual(location, [["row", nil], ["table", "4"]], "a store without the audit leaves the head alone")
        try await vault.store(sampleTokens(), client: "c", provider: "zoho_crm")
        location = try await head()
        XCTAssertEqual(location, [["row", "5"]])

        let events = try await vault.auditEvents(AuditFilter(client: "c"))
        XCTAssertEqual(events.map(\.kind), [.stored, .stored, .deleted, .stored, .stored])
        XCTAssertEqual(events.map(\.sequence), [1, 2, 3, 4, 5])

        // A row first stored without the audit, whose chain has no head anywhere: its first audited write starts
        // the chain in the write's own statement.
        try await unaudited.store(sampleTokens(), client: "fresh", provider: "zoho_crm")
        try await other.store(sampleTokens(), client: "fresh", provider: "zoho_crm")
        let fresh = try await fixture.sql("SELECT audit_seq::text FROM oauth_tokens WHERE client_id = 'fresh'")
        XCTAssertEqual(fresh, [["1"]])
        report = try await vault.verifyAudit()
        XCTAssertTrue(report.ok, "\(report.problems)")
        XCTAssertEqual(report.chains, 2)
    }

    /// Migration 6 on a trail written under migration 5 (heads in `token_vault_audit_heads`, events keyed by chain
    /// and sequence): each existing row takes its chain's head, a deleted row's stays in the table, and the trail
    /// verifies before and after.
    func testMigrationSixMovesEachRowsHeadIntoTheRow() async throws {
        let fixture = try await makeFixture()
        let vault = fixture.vault
        for client in ["a", "b", "gone"] { try await vault.store(sampleTokens(), client: client, provider: "p") }
        try await vault.store(sampleTokens(), client: "a", provider: "p")
        let gone = try await vault.delete(client: "gone", provider: "p")
        XCTAssertTrue(gone)
        // Back to the layout of migration 5.
        try await AdminSQL.execute(
            """
            INSERT INTO token_vault_audit_heads (chain, seq, digest, mac_key_id, mac)
            SELECT 'row:' || octet_length(client_id) || ':' || client_id || '/' || provider, audit_seq, audit_digest,
                audit_mac_key_id, audit_mac
            FROM oauth_tokens WHERE audit_seq IS NOT NULL;
            ALTER TABLE oauth_tokens DROP CONSTRAINT oauth_tokens_audit_head, DROP COLUMN audit_seq,
                DROP COLUMN audit_digest, DROP COLUMN audit_mac_key_id, DROP COLUMN audit_mac;
            ALTER TABLE token_vault_audit_events ADD CONSTRAINT token_vault_audit_events_pkey PRIMARY KEY (chain, seq);
            DELETE FROM token_vault_migrations WHERE version = 6;
            """, url: fixture.database.url)
        let applied = try await vault.migrate()
        XCTAssertEqual(applied, [6])
        let heads = try await fixture.sql(
            "SELECT client_id, audit_seq::text FROM oauth_tokens ORDER BY client_id")
        XCTAssertEqual(heads, [["a", "2"], ["b", "1"]])
        let table = try await fixture.sql("SELECT chain, seq::text FROM token_vault_audit_heads ORDER BY chain")
        XCTAssertEqual(table, [["row:4:gone/p", "2"]])
        let report = try await vault.verifyAudit()
        XCTAssertTrue(report.ok, "\(report.problems)")
        XCTAssertEqual(report.events, 5, "a: 2, b: 1, gone: stored and deleted")
        let other = try fixture.reopen()
        defer { Task { await other.shutdown() } }
        try await other.store(sampleTokens(), client: "a", provider: "p")
        let events = try await other.auditEvents(AuditFilter(client: "a"))
        XCTAssertEqual(events.map(\.sequence), [1, 2, 3])
    }

    /// An API's 401 reported through `accessToken(replacing:)` is recorded, then the refresh it causes; a late or
    /// foreign report, which changes nothing, records nothing.
    /// Connecting through the authorization flow records `authorized`; disconnecting with revocation records
    /// `revoked` and `deleted`, in the delete's transaction.
    func testAConnectionAndItsRevocationAreRecorded() async throws {
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        let vault = fixture.vault
        let request = try await vault.beginAuthorization(
            client: "c", provider: "zoho_crm", redirectURI: "https://app.example/oauth/callback",
            scopes: ["ZohoCRM.modules.ALL"])
        let callback = try endpoint.approve(request.url)
        _ = try await vault.completeAuthorization(AuthorizationCallback(parsing: callback.absoluteString))
        let deleted = try await vault.delete(client: "c", provider: "zoho_crm", revoke: true)
        XCTAssertTrue(deleted)
        XCTAssertEqual(endpoint.revocationCount, 1)
        let events = try await vault.auditEvents(AuditFilter(client: "c"))
        XCTAssertEqual(events.map(\.kind), [.authorized, .revoked, .deleted])
        XCTAssertEqual(events.map(\.sequence), [1, 2, 3])
        let report = try await vault.verifyAudit()
        XCTAssertTrue(report.ok, "\(report.problems)")
    }

    func testARejectedAccessTokenIsRecordedAsInvalidated() async throws {
        endpoint.addRefreshToken("rt-401")
        let fixture = try await makeFixture(providers: [endpoint.zoho()])
        try await fixture.vault.store(
            sampleTokens(access: "1000.refused-by-api", refresh: "rt-401"), client: "a", provider: "zoho_crm")
        let first = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm").value
        let second = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm", replacing: first)
        XCTAssertTrue(second.refreshed)
        _ = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm", replacing: first)
        _ = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm", replacing: Secret("1000.other"))
        let events = try await fixture.vault.auditEvents(AuditFilter(client: "a"))
        XCTAssertEqual(events.map(\.kind), [.stored, .invalidated, .refreshed])
        XCTAssertEqual(events[1].detailsJSON, #"{"field":"access_token"}"#)
        let report = try await fixture.vault.verifyAudit()
        XCTAssertTrue(report.ok, "\(report.problems)")
    }

    func testReadsAreAuditedOnlyWhenAskedAndAuditCanBeTurnedOff() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "zoho_crm")
        _ = try await fixture.vault.accessToken(client: "a", provider: "zoho_crm")
        let before = try await kinds(fixture.vault, client: "a")
        XCTAssertEqual(before, ["stored"])
        var configuration = fixture.vault.configuration
        configuration.audit.auditReads = true
        configuration.audit.actor = "alice"
        let reading = try Vault(configuration: configuration)
        defer { Task { await reading.shutdown() } }
        _ = try await reading.accessToken(client: "a", provider: "zoho_crm")
        _ = try await reading.fetch(client: "a", provider: "zoho_crm")
        let events = try await reading.auditEvents(AuditFilter(client: "a"))
        XCTAssertEqual(events.map(\.kind), [.stored, .read, .read])
        XCTAssertEqual(events.map(\.actor.name), [nil, "alice", "alice"])
        XCTAssertEqual(events.last?.detailsJSON, #"{"fields":"access_token,refresh_token"}"#)
        configuration.audit.enabled = false
        let silent = try Vault(configuration: configuration)
        defer { Task { await silent.shutdown() } }
        try await silent.store(sampleTokens(), client: "a", provider: "zoho_crm")
        _ = try await silent.fetch(client: "a", provider: "zoho_crm")
        let after = try await kinds(silent, client: "a")
        XCTAssertEqual(after, ["stored", "read", "read"])
    }
}
