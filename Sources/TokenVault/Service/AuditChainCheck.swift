/// Checks one chain of the audit trail, event by event in sequence order, then against its head.
///
/// Recomputes the digest chain from the chain's start (its prune anchor, or the genesis), checks every MAC whose
/// key is in the keyring, and stops at the first broken link. An event under an unknown key is counted as
/// unauthenticated unless a later MAC that can be checked (an event's or the head's) covers it through the digest.
struct AuditChainCheck {
    let chain: String
    private let signer: AuditSigner
    private(set) var problem: AuditVerificationReport.Problem?
    private(set) var events = 0
    private(set) var unauthenticated = 0
    private var pending = 0
    /// Where the chain stands after the events added so far.
    private(set) var position: AuditHead
    /// The last position whose event was made before the prune cut-off, while every event so far was.
    private(set) var prunable: AuditHead?
    private var beforeCutoff = true
    private let cutoff: Int64?
    let anchor: StoredAuditMark?

    init(chain: String, anchor: StoredAuditMark?, signer: AuditSigner, pruneBefore cutoff: Int64? = nil) {
        self.chain = chain
        self.signer = signer
        self.anchor = anchor
        self.cutoff = cutoff
        position = anchor?.head ?? .genesis
        if let anchor {
            switch signer.check(
                anchor.mac, AuditSigner.anchorMessage(chain: chain, anchor.head), keyID: anchor.macKeyID)
            {
            case false: fail(nil, "its prune anchor does not verify (edited, or forged without the key)")
            case nil: unauthenticated += 1
            default: break
            }
        }
    }

    private mutating func fail(_ sequence: Int64?, _ reason: String) {
        if problem == nil { problem = .init(chain: chain, sequence: sequence, reason: reason) }
    }

    /// Adds the next stored event of this chain.
    mutating func add(_ stored: StoredAuditEvent) {
        guard problem == nil else { return }
        events += 1
        let event = stored.event
        let expected = position.sequence + 1
        guard event.sequence == expected else {
            fail(
                expected,
                event.sequence > expected
                    ? "event \(expected) is missing (deleted)\(event.sequence > expected + 1 ? ", through \(event.sequence - 1)" : "")"
                    : "event \(event.sequence) appears out of order")
            return
        }
        guard event.chain == chain else { return fail(event.sequence, "it names another chain") }
        let digest = AuditChain.digest(after: position.digest, event)
        switch signer.check(stored.mac, AuditSigner.eventMessage(digest), keyID: event.macKeyID) {
        case false:
            return fail(
                event.sequence,
                "its MAC does not verify: the event was edited, moved, reordered or inserted without the key")
        case nil:
            pending += 1
        default:
            pending = 0
        }
        if event.detailsJSON.contains("\"\(AuditChain.unverifiedHeadDetail)\"") {
            // Its writer could not authenticate the head it followed (a key no longer in its keyring): whatever
            // happened to the chain before it cannot be vouched for, even though this event verifies.
            return fail(
                event.sequence,
                "it was appended after a head the writer could not authenticate (its key was not in the keyring): "
                    + "events before it may have been cut or edited; prune the chain up to it once that is checked")
        }
        position = AuditHead(sequence: event.sequence, digest: digest)
        if let cutoff, beforeCutoff {
            if event.microseconds < cutoff { prunable = position } else { beforeCutoff = false }
        }
    }

    /// Checks the chain's end against its head.
    mutating func finish(head: StoredAuditMark?) {
        defer { unauthenticated += pending }
        guard problem == nil else { return }
        guard let head else {
            return fail(nil, "its head is missing (deleted): its last events cannot be checked")
        }
        if head.head.sequence > position.sequence {
            return fail(
                position.sequence + 1,
                "events \(position.sequence + 1) to \(head.head.sequence) are missing (the chain's tail was deleted)")
        }
        if head.head.sequence < position.sequence {
            return fail(
                head.head.sequence + 1,
                "the head stops at event \(head.head.sequence): it was rolled back, or later events were inserted")
        }
        switch signer.check(head.mac, AuditSigner.headMessage(chain: chain, head.head), keyID: head.macKeyID) {
        case false:
            return fail(nil, "its head does not verify (edited, or rolled back to an earlier state)")
        case nil:
            // Under a key the keyring does not hold: the head cannot vouch for the chain's end, so it counts as
            // unauthenticated (the report is then not ok) and its digest is still compared.
            unauthenticated += 1
        default:
            pending = 0
        }
        let same = head.head.digest.withUnsafeBytes { lhs in
            position.digest.withUnsafeBytes { rhs in Sodium.constantTimeEqual(lhs, rhs) }
        }
        if !same { fail(head.head.sequence, "the events do not lead to the chain's head (edited or replaced)") }
    }
}
