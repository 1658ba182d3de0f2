import XCTest

@testable import TokenVault

/// The audit chain's encoding and MACs, without a database.
final class AuditChainTests: XCTestCase {
    let actor = AuditActor(application: "svc", host: "h1", pid: 42, name: "alice")

    func event(
        chain: String = "row:1:a/p", sequence: Int64 = 1, micros: Int64 = 1_700_000_000_000_000,
        kind: AuditEvent.Kind = .stored, client: String? = "a", provider: String? = "p", keyID: KeyID? = nil,
        outcome: String = "ok", actor: AuditActor? = nil, details: String = "{}", macKeyID: KeyID = KeyID(rawValue: "k")
    ) -> AuditEvent {
        AuditEvent(
            chain: chain, sequence: sequence, microseconds: micros, kind: kind, clientID: client, provider: provider,
            keyID: keyID, outcome: outcome, actor: actor ?? self.actor, detailsJSON: details, macKeyID: macKeyID)
    }

    func testEveryFieldIsInTheDigest() {
        let base = AuditChain.digest(after: AuditHead.genesis.digest, event())
        let variants = [
            event(chain: "row:1:b/p"), event(sequence: 2), event(micros: 1_700_000_000_000_001), event(kind: .deleted),
            event(client: nil), event(client: "b"), event(provider: nil), event(keyID: KeyID(rawValue: "x")),
            event(outcome: "failed"), event(actor: AuditActor(application: "svc2", host: "h1", pid: 42, name: "alice")),
            event(actor: AuditActor(application: "svc", host: "h2", pid: 42, name: "alice")),
            event(actor: AuditActor(application: "svc", host: "h1", pid: 43, name: "alice")),
            event(actor: AuditActor(application: "svc", host: "h1", pid: 42, name: nil)), event(details: "{\"a\":1}"),
            event(macKeyID: KeyID(rawValue: "k2")),
        ]
        let digests = variants.map { AuditChain.digest(after: AuditHead.genesis.digest, $0) }
        XCTAssertFalse(digests.contains(base))
        XCTAssertEqual(Set(digests.map { $0.description }).count, variants.count, "each change, its own digest")
        XCTAssertNotEqual(AuditChain.digest(after: [UInt8](repeating: 1, count: 32), event()), base, "the link too")
    }

    func testFieldsCannotBeShiftedIntoEachOther() {
        // Length prefixes and presence bytes: moving text between neighbours changes the encoding.
        XCTAssertNotEqual(
            AuditChain.canonical(event(client: "ab", provider: "c")),
            AuditChain.canonical(event(client: "a", provider: "bc")))
        XCTAssertNotEqual(
            AuditChain.canonical(event(client: nil, provider: "p")),
            AuditChain.canonical(event(client: "", provider: "p")))
        XCTAssertNotEqual(
            AuditEvent.chain(client: "a/b", provider: "c"), AuditEvent.chain(client: "a", provider: "b/c"))
    }

    func testTheMACNeedsTheKeyAndNamesIt() throws {
        let key = VaultKey.generate()
        let signer = AuditSigner(keyring: try Keyring(current: key))
        let record = signer.append(event(macKeyID: key.id), after: .genesis)
        let message = AuditSigner.eventMessage(record.head.digest)
        XCTAssertEqual(signer.check(record.mac, message, keyID: key.id), true)
        var flipped = record.mac
        flipped[0] ^= 1
        XCTAssertEqual(signer.check(flipped, message, keyID: key.id), false)
        let other = AuditSigner(keyring: try Keyring(current: VaultKey.generate()))
        XCTAssertNil(other.check(record.mac, message, keyID: key.id), "another keyring cannot check it")
        XCTAssertNotEqual(other.mac(message, keyID: other.currentKeyID), record.mac)
        // The head's MAC is not the event's: one cannot stand in for the other.
        XCTAssertNotEqual(record.headMAC, record.mac)
        XCTAssertEqual(
            signer.check(record.headMAC, AuditSigner.headMessage(chain: "row:1:a/p", record.head), keyID: key.id), true)
    }
}
