/// Where a chain of audit events stands: the last sequence number and the digest of everything up to it.
///
/// `digest(n) = BLAKE2b-256(digest(n-1) ‖ canonical(event n))`, unkeyed: it commits to every event of the chain
/// so far, and each event's MAC (and the head's, and a prune anchor's) authenticates a digest (docs/audit.md).
/// The detail an event carries when its writer appended it after a head it could not authenticate (under a key
/// not in its keyring); `verifyAudit()` names such an event.
extension AuditChain {
    package static let unverifiedHeadDetail = "after_unverified_head_key"
}

package struct AuditHead: Sendable, Equatable {
    package var sequence: Int64
    package var digest: [UInt8]

    package init(sequence: Int64, digest: [UInt8]) {
        self.sequence = sequence
        self.digest = digest
    }

    /// Before the first event of a chain.
    package static let genesis = AuditHead(sequence: 0, digest: [UInt8](repeating: 0, count: AuditChain.digestBytes))
}

/// The canonical encoding of an audit event and the unkeyed digest chain over it.
package enum AuditChain {
    package static let digestBytes = 32
    static let eventLabel = Array("token-vault/audit-event/v1".utf8)

    /// An unambiguous encoding of every field of `event`: each length-prefixed, optional ones with a presence byte.
    package static func canonical(_ event: AuditEvent, after previous: [UInt8] = []) -> [UInt8] {
        var out = previous
        out.reserveCapacity(previous.count + 320 + event.detailsJSON.utf8.count)
        func integer(_ value: UInt64, bytes: Int) {
            for shift in stride(from: (bytes - 1) * 8, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            }
        }
        func field(_ bytes: some Collection<UInt8>) {
            integer(UInt64(bytes.count), bytes: 4)
            out.append(contentsOf: bytes)
        }
        func optional(_ text: String?) {
            if let text {
                out.append(1)
                field(text.utf8)
            } else {
                out.append(0)
            }
        }
        field(eventLabel)
        field(event.chain.utf8)
        integer(UInt64(bitPattern: event.sequence), bytes: 8)
        integer(UInt64(bitPattern: event.microseconds), bytes: 8)
        field(event.kind.rawValue.utf8)
        optional(event.clientID)
        optional(event.provider)
        optional(event.keyID?.rawValue)
        field(event.outcome.utf8)
        field(event.actor.application.utf8)
        field(event.actor.host.utf8)
        integer(UInt64(UInt32(bitPattern: event.actor.pid)), bytes: 4)
        optional(event.actor.name)
        field(event.detailsJSON.utf8)
        field(event.macKeyID.rawValue.utf8)
        return out
    }

    /// The digest after `event`, which follows a chain whose digest is `previous`.
    package static func digest(after previous: [UInt8], _ event: AuditEvent) -> [UInt8] {
        hash(canonical(event, after: previous))
    }

    /// Unkeyed BLAKE2b-256.
    package static func hash(_ message: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: digestBytes)
        output.withUnsafeMutableBytes { output in
            message.withUnsafeBytes { message in
                Sodium.keyedHash(into: output, message: message, key: UnsafeRawBufferPointer(start: nil, count: 0))
            }
        }
        return output
    }

    /// Length-prefixed chain name and big-endian sequence, for the head and anchor MACs.
    package static func position(_ label: String, chain: String, sequence: Int64, digest: [UInt8]) -> [UInt8] {
        var out = Array(label.utf8)
        let name = Array(chain.utf8)
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: name.count >> shift)) }
        out += name
        for shift in stride(from: 56, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: UInt64(bitPattern: sequence) >> UInt64(shift)))
        }
        return out + digest
    }
}

/// An event ready to be written: its MAC, and the chain head it leaves, with the head's MAC.
package struct AuditRecord: Sendable {
    package init(event: AuditEvent, mac: [UInt8], head: AuditHead, headMAC: [UInt8]) {
        self.event = event
        self.mac = mac
        self.head = head
        self.headMAC = headMAC
    }

    package let event: AuditEvent
    package let mac: [UInt8]
    package let head: AuditHead
    package let headMAC: [UInt8]
}
