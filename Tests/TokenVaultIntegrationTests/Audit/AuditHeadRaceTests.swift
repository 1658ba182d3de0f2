import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// Review of "the row keeps its chain's head": concurrent writers of one chain must never fork it (two events
/// with one sequence number) nor leave its head in two places or none. The events have no unique key any more,
/// so nothing but the writers' compare-and-sets keeps a chain linear.
final class AuditHeadRaceTests: DatabaseTestCase {
    func chain(_ client: String, _ provider: String = "p") -> String {
        AuditEvent.chain(client: client, provider: provider)
    }

    /// Holds the statement that inserts an event of kind `kind` (after its snapshot was taken and its head moved,
    /// before its transaction commits) until `condition` (SQL, evaluated with a fresh snapshot each time) holds,
    /// at most 10 s.
    func pauseEvents(of kind: String, until condition: String, _ fixture: VaultFixture) async throws {
        try await AdminSQL.execute(
            """
            CREATE FUNCTION review_pause() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE waited integer := 0;
            BEGIN
                IF NEW.kind = '\(kind)' THEN
                    WHILE waited < 200 AND NOT (\(condition)) LOOP
                        PERFORM pg_sleep(0.05);
                        waited := waited + 1;
                    END LOOP;
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER review_pause BEFORE INSERT ON token_vault_audit_events
            FOR EACH ROW EXECUTE FUNCTION review_pause();
            """, url: fixture.database.url)
    }

    func waitUntilPaused(_ fixture: VaultFixture) async throws {
        let deadline = Date().addingTimeInterval(10)
        while true {
            let paused = try await fixture.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()")
            if paused.first?.first != "0" { return }
            guard Date() < deadline else { return XCTFail("the paused writer never reached its event") }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
    }

    /// Sequence numbers that more than one event of `chain` holds.
    func forks(_ chain: String, _ fixture: VaultFixture) async throws -> [String?] {
        try await fixture.sql(
            """
            SELECT seq::text FROM token_vault_audit_events WHERE chain = '\(chain)'
            GROUP BY seq HAVING count(*) > 1 ORDER BY seq
            """
        ).map { $0[0] }
    }

    /// Where `chain`'s head is kept: the row's audit_seq and/or the entry of token_vault_audit_heads.
    func headPlaces(client: String, provider: String = "p", _ fixture: VaultFixture) async throws -> [[String?]] {
        try await fixture.sql(
            """
            SELECT 'row', audit_seq::text FROM oauth_tokens
            WHERE client_id = '\(client)' AND provider = '\(provider)' AND audit_seq IS NOT NULL
            UNION ALL SELECT 'table', seq::text FROM token_vault_audit_heads WHERE chain = '\(chain(client, provider))'
            """)
    }

    /// A delete of a row that keeps its head, while an import of the same row waits for the row's lock.
    ///
    /// The delete moves the head into token_vault_audit_heads (a new entry, seq 3 with its `deleted` event) and
    /// commits. The import's `lockAuditHeads` began before that commit: its rows' branch waited for the row and
    /// then skipped it (deleted), and its heads' branch, in the same statement's snapshot, cannot see the entry
    /// the delete inserted. The import then believes the chain is new, inserts the row, seals `stored` as event 1,
    /// and `appendAudit(rowBatch:)` moves "the" head into the row with `audit_seq IS NULL` as its only check; its
    /// `unheaded` CTE deletes the table's head (seq 3) without comparing it with anything. Result: two events 1,
    /// the deleted row's head gone, and a chain that `audit verify` reports as tampered for good (prune keeps it).
    func testADeleteWhileAnImportOfTheSameRowWaitsDoesNotForkTheChain() async throws {
        let fixture = try await makeFixture()
        try await fixture.vault.store(sampleTokens(), client: "r", provider: "p")
        try await fixture.vault.store(sampleTokens(), client: "r", provider: "p")
        // The delete waits, after its event's snapshot and before its commit, until another writer waits for a lock.
        try await pauseEvents(of: "deleted", until: "EXISTS (SELECT FROM pg_locks WHERE NOT granted)", fixture)
        let vault = fixture.vault
        let deletion = Task { try await vault.delete(client: "r", provider: "p") }
        try await waitUntilPaused(fixture)
        let importer = try fixture.reopen()
        defer { Task { await importer.shutdown() } }
        let imported = try await importer.importTokens([
            ImportRecord(client: "r", provider: "p", tokens: sampleTokens()),
            ImportRecord(client: "s", provider: "p", tokens: sampleTokens()),
        ])
        XCTAssertEqual(imported, 2)
        let deleted = try await deletion.value
        XCTAssertTrue(deleted)

        let kinds = try await fixture.sql(
            "SELECT seq::text, kind FROM token_vault_audit_events WHERE chain = '\(chain("r"))' ORDER BY seq, kind")
        let forked = try await forks(chain("r"), fixture)
        XCTAssertEqual(forked, [], "two events share a sequence number: \(kinds)")
        let places = try await headPlaces(client: "r", fixture)
        XCTAssertEqual(places, [["row", "4"]], "the import's event follows the delete's: \(kinds)")
        let report = try await fixture.vault.verifyAudit()
        XCTAssertTrue(report.ok, "a race of two routine writes reads as tampering: \(report.problems)")
    }

    /// An event without a row (a refresh with the provider's fallback refresh token failed, for an account that
    /// has no row yet) while the same account is stored for the first time by another process.
    ///
    /// The failure's transaction finds no head to lock (no row, no entry in token_vault_audit_heads), inserts the
    /// chain's head into the table (`in_table`, guarded only by `NOT EXISTS` the row in its snapshot) and event 1.
    /// The store, meanwhile, finds no head to lock either (the table's entry is not committed), inserts the row,
    /// and moves "the" head into it with event 1 (`in_row`, `audit_seq IS NULL`); its `unheaded` delete cannot see
    /// the uncommitted entry. Nothing serializes the two (under migration 5 the heads' primary key and the events'
    /// (chain, seq) key did): two events 1, and the head in the row and in the table at once.
    func testAnEventWithoutARowWhileTheRowIsCreatedDoesNotForkTheChain() async throws {
        let endpoint = try FakeTokenEndpoint.start()
        defer { endpoint.stop() }
        // "rt-unknown" was never issued: the provider refuses it (needs_reauthorization, recorded without a row).
        let fixture = try await makeFixture(providers: [endpoint.zoho(fallback: "rt-unknown")])
        try await pauseEvents(
            of: "needs_reauthorization",
            until: "EXISTS (SELECT FROM oauth_tokens WHERE client_id = 'new' AND audit_seq IS NOT NULL)", fixture)
        let vault = fixture.vault
        let refresh = Task { try await vault.accessToken(client: "new", provider: "zoho_crm") }
        try await waitUntilPaused(fixture)
        let other = try fixture.reopen()
        defer { Task { await other.shutdown() } }
        try await other.store(sampleTokens(), client: "new", provider: "zoho_crm")
        await assertVaultError(.needsReauthorization) { try await refresh.value }

        let kinds = try await fixture.sql(
            """
            SELECT seq::text, kind FROM token_vault_audit_events WHERE chain = '\(chain("new", "zoho_crm"))'
            ORDER BY seq, kind
            """)
        XCTAssertEqual(kinds.count, 2, "\(kinds)")
        let forked = try await forks(chain("new", "zoho_crm"), fixture)
        XCTAssertEqual(forked, [], "two events share a sequence number: \(kinds)")
        let places = try await headPlaces(client: "new", provider: "zoho_crm", fixture)
        XCTAssertEqual(places.count, 1, "the chain's head is kept in one place: \(places)")
        let report = try await fixture.vault.verifyAudit()
        XCTAssertTrue(report.ok, "a race of two routine writes reads as tampering: \(report.problems)")
    }

    /// A key rotation batch and an import of a row that exists, at once.
    ///
    /// `lockAuditHeads` now locks a transaction's rows before the heads in token_vault_audit_heads. The import
    /// locks its existing rows, then the head of the chain `vault`; a rotation batch locks the head of `vault`
    /// (its only chain), then updates the rows it re-seals. Under migration 5 both took the heads first (the rows
    /// were touched only by their bodies), so they queued; now each holds what the other wants next, PostgreSQL
    /// aborts one with a deadlock, and nothing retries it (`auditedTransaction` retries only a created chain, a
    /// pooler's symptom and a dropped connection): the import or `rotate-key` fails.
    func testARotationBatchAndAnImportOfAnExistingRowDoNotDeadlock() async throws {
        let old = VaultKey.generate()
        let new = VaultKey.generate()
        let fixture = try await makeFixture(keyring: try Keyring(current: old))
        // An import: the rows exist, under the old key, and the chain `vault` has a head.
        try await fixture.vault.importTokens([
            ImportRecord(client: "r", provider: "p", tokens: sampleTokens()),
            ImportRecord(client: "s", provider: "p", tokens: sampleTokens()),
        ])
        // The rotation's re-seal waits, once it holds the head of `vault`, until another writer waits for a lock.
        try await AdminSQL.execute(
            """
            CREATE FUNCTION review_pause_reseal() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE waited integer := 0;
            BEGIN
                IF current_query() LIKE '%refresh_ciphertext, refresh_nonce, version)%' THEN
                    WHILE waited < 200 AND NOT EXISTS (SELECT FROM pg_locks WHERE NOT granted) LOOP
                        PERFORM pg_sleep(0.05);
                        waited := waited + 1;
                    END LOOP;
                END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER review_pause_reseal BEFORE UPDATE ON oauth_tokens
            FOR EACH STATEMENT EXECUTE FUNCTION review_pause_reseal();
            """, url: fixture.database.url)
        let rotating = try fixture.reopen(keyring: try Keyring(current: new, previous: [old]))
        defer { Task { await rotating.shutdown() } }
        let rotation = Task { try await rotating.rotateKeys(batchSize: 10) }
        try await waitUntilPaused(fixture)
        let importer = try fixture.reopen(keyring: try Keyring(current: new, previous: [old]))
        defer { Task { await importer.shutdown() } }
        var failures: [String] = []
        do {
            try await importer.importTokens([
                ImportRecord(client: "r", provider: "p", tokens: sampleTokens()),
                ImportRecord(client: "t", provider: "p", tokens: sampleTokens()),
            ])
        } catch {
            failures.append("import: \(error)")
        }
        do {
            _ = try await rotation.value
        } catch {
            failures.append("rotate-key: \(error)")
        }
        XCTAssertEqual(failures, [], "two routine writers deadlocked")
    }

    /// Someone without the key empties a row's head (its audit_* columns), leaving its events. The next routine
    /// write by a process that cached the head misses its compare-and-set and reads "no head in the row, none in
    /// the table" (`RowAuditHead.none`): a head it knew cannot vanish so, and the write is refused (under migration
    /// 5 the events' primary key refused it). A process that never saw the chain cannot tell it from a row stored
    /// while the audit was off: it starts the chain at 1, beside the old events, and `verifyAudit` names the chain.
    func testAWriteAfterARowsHeadWasEmptiedDoesNotRestartItsChain() async throws {
        let fixture = try await makeFixture()
        for _ in 0..<3 { try await fixture.vault.store(sampleTokens(), client: "a", provider: "p") }
        _ = try await fixture.sql(
            """
            UPDATE oauth_tokens SET audit_seq = NULL, audit_digest = NULL, audit_mac_key_id = NULL, audit_mac = NULL
            WHERE client_id = 'a' AND provider = 'p'
            """)
        let refused = await assertVaultError(.authenticationFailed) {
            try await fixture.vault.store(sampleTokens(), client: "a", provider: "p")
        }
        XCTAssertTrue(refused?.message.contains("removed from its row") ?? false, "\(String(describing: refused))")
        let forked = try await forks(chain("a"), fixture)
        XCTAssertEqual(forked, [], "a routine write appended a second event with a sequence number already taken")

        let other = try fixture.reopen()
        defer { Task { await other.shutdown() } }
        try await other.store(sampleTokens(), client: "a", provider: "p")
        let report = try await fixture.vault.verifyAudit()
        XCTAssertFalse(report.ok)
        XCTAssertTrue(report.problems.contains { $0.chain == chain("a") }, "\(report.problems)")
    }
}
