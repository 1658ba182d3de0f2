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
        var out = CanonicalWriter(
            capacity: previous.count + 96 + event.chain.utf8.count + event.kind.rawValue.utf8.count
                + (event.clientID?.utf8.count ?? 0) + (event.provider?.utf8.count ?? 0)
                + (event.keyID?.rawValue.utf8.count ?? 0) + event.outcome.utf8.count
                + event.actor.application.utf8.count + event.actor.host.utf8.count
                + (event.actor.name?.utf8.count ?? 0) + event.detailsJSON.utf8.count
                + event.macKeyID.rawValue.utf8.count
                + eventLabel.count)
        out.bytes.append(contentsOf: previous)
        out.field(eventLabel)
        out.field(event.chain)
        out.integer(UInt64(bitPattern: event.sequence))
        out.integer(UInt64(bitPattern: event.microseconds))
        out.field(event.kind.rawValue)
        out.optional(event.clientID)
        out.optional(event.provider)
        out.optional(event.keyID?.rawValue)
        out.field(event.outcome)
        out.field(event.actor.application)
        out.field(event.actor.host)
        out.integer(UInt32(bitPattern: event.actor.pid))
        out.optional(event.actor.name)
        out.field(event.detailsJSON)
        out.field(event.macKeyID.rawValue)
        return out.bytes
    }

    /// Appends big-endian integers and length-prefixed fields (a 4-byte length), reserving room once.
    private struct CanonicalWriter {
        var bytes: [UInt8] = []

        init(capacity: Int) { bytes.reserveCapacity(capacity) }

        mutating func integer<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        }

        mutating func field(_ field: [UInt8]) {
            integer(UInt32(truncatingIfNeeded: field.count))
            bytes.append(contentsOf: field)
        }

        mutating func field(_ text: String) {
            integer(UInt32(truncatingIfNeeded: text.utf8.count))
            bytes.append(contentsOf: text.utf8)
        }

        mutating func optional(_ text: String?) {
            if let text {
                bytes.append(1)
                field(text)
            } else {
                bytes.append(0)
            }
        }
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
        var out = CanonicalWriter(capacity: label.utf8.count + 12 + chain.utf8.count + digest.count)
        out.bytes.append(contentsOf: label.utf8)
        out.field(chain)
        out.integer(UInt64(bitPattern: sequence))
        out.bytes.append(contentsOf: digest)
        return out.bytes
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
