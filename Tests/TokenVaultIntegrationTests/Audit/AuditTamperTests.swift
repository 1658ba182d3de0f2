import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// Someone who can write to the database but has no key edits, deletes, reorders and forges events with plain
/// SQL: `verifyAudit` must name each chain's first broken link.
final class AuditTamperTests: DatabaseTestCase {
    /// Stores four events in the chain of each client.
    func fixtureWithChains(_ clients: [String]) async throws -> VaultFixture {
        let fixture = try await makeFixture()
        for _ in 0..<4 {
            for client in clients { try await fixture.vault.store(sampleTokens(), client: client, provider: "p") }
        }
        let clean = try await fixture.vault.verifyAudit()
        XCTAssertTrue(clean.ok, "\(clean.problems)")
        return fixture
    }

    func chain(_ client: String) -> String { AuditEvent.chain(client: client, provider: "p") }

    func testEveryKindOfTamperingIsNamed() async throws {
        let clients = [
            "edited", "retimed", "deleted-middle", "swapped", "tail-cut", "tail-cut-head-rolled", "head-deleted",
            "forged-append", "moved", "actor-edited", "untouched",
        ]
        let fixture = try await fixtureWithChains(clients)
        let events = "token_vault_audit_events"
        // A row keeps its chain's head in its audit_* columns.
        func row(_ client: String) -> String { "client_id = '\(client)' AND provider = 'p'" }
        func chain(_ client: String) -> String { "'\(self.chain(client))'" }
        for statement in [
            // An event's details edited.
            "UPDATE \(events) SET details = '{\"note\":\"nothing happened\"}' WHERE chain = \(chain("edited")) AND seq = 2",
            // An event's time moved.
            "UPDATE \(events) SET at = at - interval '1 day' WHERE chain = \(chain("retimed")) AND seq = 3",
            // An event deleted from the middle.
            "DELETE FROM \(events) WHERE chain = \(chain("deleted-middle")) AND seq = 2",
            // Two events reordered: their sequence numbers swapped.
            "UPDATE \(events) SET seq = 1000 WHERE chain = \(chain("swapped")) AND seq = 2",
            "UPDATE \(events) SET seq = 2 WHERE chain = \(chain("swapped")) AND seq = 3",
            "UPDATE \(events) SET seq = 3 WHERE chain = \(chain("swapped")) AND seq = 1000",
            // The last event deleted.
            "DELETE FROM \(events) WHERE chain = \(chain("tail-cut")) AND seq = 4",
            // The last event deleted and the head moved back to the event before, digest and all (the digest
            // is unkeyed, so it can be computed; the head's MAC cannot: it is copied from another chain).
            "DELETE FROM \(events) WHERE chain = \(chain("tail-cut-head-rolled")) AND seq = 4",
            """
            UPDATE oauth_tokens SET audit_seq = 3,
                audit_mac = (SELECT audit_mac FROM oauth_tokens WHERE \(row("untouched")))
            WHERE \(row("tail-cut-head-rolled"))
            """,
            // The head deleted.
            """
            UPDATE oauth_tokens SET audit_seq = NULL, audit_digest = NULL, audit_mac_key_id = NULL, audit_mac = NULL
            WHERE \(row("head-deleted"))
            """,
            // An event forged at the end, copied from another chain with its MAC, and the head moved on.
            """
            INSERT INTO \(events) SELECT \(chain("forged-append")), 5, at, kind, client_id, provider, key_id, outcome,
                application, host, pid, actor, details, mac_key_id, mac
            FROM \(events) WHERE chain = \(chain("untouched")) AND seq = 4
            """,
            "UPDATE oauth_tokens SET audit_seq = 5 WHERE \(row("forged-append"))",
            // An event moved to another row's chain.
            """
            UPDATE \(events) SET client_id = 'untouched-2', chain = 'row:11:untouched-2/p'
            WHERE chain = \(chain("moved")) AND seq = 1
            """,
            // Who did it, edited.
            "UPDATE \(events) SET actor = 'someone else', host = 'elsewhere' WHERE chain = \(chain("actor-edited")) AND seq = 1",
        ] {
            _ = try await fixture.sql(statement)
        }
        let report = try await fixture.vault.verifyAudit()
        let named = Dictionary(uniqueKeysWithValues: report.problems.map { ($0.chain, $0) })
        func expect(_ client: String, _ sequence: Int64?, _ words: String, line: UInt = #line) {
            guard let problem = named[self.chain(client)] else {
                return XCTFail("\(client): not named; report: \(report.problems)", line: line)
            }
            XCTAssertEqual(problem.sequence, sequence, "\(problem)", line: line)
            XCTAssertTrue(problem.reason.contains(words), "\(problem)", line: line)
        }
        expect("edited", 2, "MAC does not verify")
        expect("retimed", 3, "MAC does not verify")
        expect("deleted-middle", 2, "event 2 is missing")
        expect("swapped", 2, "MAC does not verify")
        expect("tail-cut", 4, "events 4 to 4 are missing")
        expect("tail-cut-head-rolled", nil, "head does not verify")
        expect("head-deleted", nil, "head is missing")
        expect("forged-append", 5, "MAC does not verify")
        expect("moved", 1, "event 1 is missing")
        expect("actor-edited", 1, "MAC does not verify")
        XCTAssertNil(named[chain("untouched")])
        // The moved event also makes a chain of its own with no head.
        XCTAssertEqual(named["row:11:untouched-2/p"]?.reason.contains("MAC does not verify"), true)
        XCTAssertEqual(report.problems.count, 11, "\(report.problems)")
        XCTAssertFalse(report.ok)
    }

    /// An event inserted in the middle, the rest of the chain renumbered after it: every MAC from there breaks.
    func testAnEventInsertedInTheMiddleIsNamed() async throws {
        let fixture = try await fixtureWithChains(["a"])
        try await AdminSQL.execute(
            """
            UPDATE token_vault_audit_events SET seq = seq + 1000 WHERE chain = '\(chain("a"))' AND seq >= 3;
            UPDATE token_vault_audit_events SET seq = seq - 999 WHERE chain = '\(chain("a"))' AND seq >= 1000;
            INSERT INTO token_vault_audit_events SELECT chain, 3, at, 'deleted', client_id, provider, key_id, outcome,
                application, host, pid, actor, details, mac_key_id, mac
            FROM token_vault_audit_events WHERE chain = '\(chain("a"))' AND seq = 2;
            UPDATE oauth_tokens SET audit_seq = 5 WHERE client_id = 'a' AND provider = 'p';
            """, url: fixture.database.url)
        let report = try await fixture.vault.verifyAudit()
        XCTAssertEqual(report.problems.map(\.sequence), [3], "\(report.problems)")
    }

    /// An event copied into the middle under a sequence number already taken (the events have no unique key, to
    /// keep appends cheap): the chain then holds two events 2. Whichever of the two comes first, the link is named:
    /// the copy's MAC does not verify at 2, or the genuine event 2 then appears out of order at 3.
    func testADuplicatedSequenceNumberIsNamed() async throws {
        let fixture = try await fixtureWithChains(["a"])
        _ = try await fixture.sql(
            """
            INSERT INTO token_vault_audit_events SELECT chain, 2, at, kind, client_id, provider, key_id, outcome,
                application, host, pid, actor, details, mac_key_id, mac
            FROM token_vault_audit_events WHERE chain = '\(chain("a"))' AND seq = 3
            """)
        let report = try await fixture.vault.verifyAudit()
        XCTAssertEqual(report.problems.count, 1, "\(report.problems)")
        XCTAssertTrue([2, 3].contains(report.problems.first?.sequence), "\(report.problems)")
        XCTAssertFalse(report.ok)
    }

    /// The tail cut and the head moved back, its MAC "made" under a key id the keyring does not know: nothing
    /// about the cut can be checked, so the trail must not verify as ok.
    func testATailCutBehindAHeadUnderAnUnknownKeyIsNotOK() async throws {
        let fixture = try await fixtureWithChains(["a"])
        _ = try await fixture.sql("DELETE FROM token_vault_audit_events WHERE chain = '\(chain("a"))' AND seq = 4")
        _ = try await fixture.sql(
            "UPDATE oauth_tokens SET audit_seq = 3, audit_mac_key_id = 'gone' WHERE client_id = 'a' AND provider = 'p'")
        let report = try await fixture.vault.verifyAudit()
        XCTAssertFalse(report.ok, "a cut tail passes: \(report.problems), unauthenticated \(report.unauthenticated)")
    }

    /// The tail cut and the head moved back with the (unkeyed, computable) digest but no valid MAC: the next
    /// audited write must not take that head on trust and authenticate the cut chain with a fresh head MAC.
    func testAWriteAfterAForgedHeadDoesNotLaunderACutTail() async throws {
        let fixture = try await fixtureWithChains(["a"])
        let events = try await fixture.vault.auditEvents(AuditFilter(client: "a"))
        let digest = events.prefix(2).reduce(AuditHead.genesis.digest) { AuditChain.digest(after: $0, $1) }
        let hex = digest.map { String(format: "%02x", $0) }.joined()
        _ = try await fixture.sql("DELETE FROM token_vault_audit_events WHERE chain = '\(chain("a"))' AND seq > 2")
        _ = try await fixture.sql(
            "UPDATE oauth_tokens SET audit_seq = 2, audit_digest = decode('\(hex)', 'hex'), audit_mac = '\\x00' "
                + "WHERE client_id = 'a' AND provider = 'p'")
        let cut = try await fixture.vault.verifyAudit()
        XCTAssertFalse(cut.ok, "the forged head is named before any write")
        let refused = await assertVaultError(.authenticationFailed) {
            try await fixture.vault.store(sampleTokens(), client: "a", provider: "p")
        }
        XCTAssertTrue(refused?.message.contains("does not verify") ?? false, "\(String(describing: refused))")
        let report = try await fixture.vault.verifyAudit()
        XCTAssertFalse(report.ok, "events 3 and 4 vanished without a trace: \(report.problems)")

        // The same cut behind a head that claims a key the keyring lacks: the write goes ahead (a retired key is
        // legitimate), but its event says it followed an unverifiable head, and verifyAudit() names it.
        _ = try await fixture.sql(
            "UPDATE oauth_tokens SET audit_mac_key_id = 'gone' WHERE client_id = 'a' AND provider = 'p'")
        try await fixture.vault.store(sampleTokens(), client: "a", provider: "p")
        let after = try await fixture.vault.verifyAudit()
        XCTAssertFalse(after.ok)
        XCTAssertTrue(
            after.problems.contains { "\($0)".contains("appended after a head the writer could not authenticate") },
            "\(after.problems)")
    }

    /// The same without cutting anything: the last event rewritten under a key id the keyring lacks, the head
    /// moved to its digest. Once an instance appends after that head, the forged event must not pass as covered.
    func testAWriteAfterAForgedHeadDoesNotLaunderAForgedEvent() async throws {
        let fixture = try await fixtureWithChains(["a"])
        var events = try await fixture.vault.auditEvents(AuditFilter(client: "a"))
        let last = events[3]
        let forged = #"{"note":"forged"}"#
        events[3] = AuditEvent(
            chain: last.chain, sequence: last.sequence, microseconds: last.microseconds, kind: .deleted,
            clientID: last.clientID, provider: last.provider, keyID: last.keyID, outcome: last.outcome,
            actor: last.actor, detailsJSON: forged, macKeyID: KeyID(rawValue: "gone"))
        let digest = events.reduce(AuditHead.genesis.digest) { AuditChain.digest(after: $0, $1) }
        let hex = digest.map { String(format: "%02x", $0) }.joined()
        _ = try await fixture.sql(
            "UPDATE token_vault_audit_events SET kind = 'deleted', details = '\(forged)', mac_key_id = 'gone' "
                + "WHERE chain = '\(chain("a"))' AND seq = 4")
        _ = try await fixture.sql(
            "UPDATE oauth_tokens SET audit_digest = decode('\(hex)', 'hex'), audit_mac = '\\x00' "
                + "WHERE client_id = 'a' AND provider = 'p'")
        // Another instance (or the CLI) writes next: it has no head of its own for the chain.
        let other = try fixture.reopen()
        defer { Task { await other.shutdown() } }
        await assertVaultError(.authenticationFailed) {
            try await other.store(sampleTokens(), client: "a", provider: "p")
        }
        let report = try await fixture.vault.verifyAudit()
        XCTAssertFalse(report.ok, "the forged event 4 verifies: \(report.problems)")
    }

    /// Without the key the trail cannot be checked: with another key, nothing is authenticated and it is not ok.
    func testAnotherKeyAuthenticatesNothing() async throws {
        let fixture = try await fixtureWithChains(["a"])
        let stranger = try fixture.reopen(keyring: try Keyring(current: VaultKey.generate()))
        defer { Task { await stranger.shutdown() } }
        let report = try await stranger.verifyAudit()
        XCTAssertEqual(report.problems, [], "an unknown key is not a broken link")
        XCTAssertEqual(report.unauthenticated, 5, "4 events and the chain's head")
        XCTAssertFalse(report.ok)
    }
}
