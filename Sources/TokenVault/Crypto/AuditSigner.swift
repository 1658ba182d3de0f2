/// Authenticates audit events, chain heads and prune anchors with keyed BLAKE2b-256 under an audit subkey of each
/// vault key: `BLAKE2b-256(key: K, message: "token-vault/audit-key/v1")`. The subkey is used for nothing else, so
/// an audit MAC never reveals anything about the sealing subkeys, and it is named by the vault key's id.
package struct AuditSigner: Sendable {
    static let subkeyLabel = Array("token-vault/audit-key/v1".utf8)
    private let subkeys: [KeyID: SecureBuffer]
    /// The current key's id: new events are authenticated under it.
    package let currentKeyID: KeyID

    package init(keyring: Keyring) {
        var subkeys: [KeyID: SecureBuffer] = [:]
        for key in [keyring.current] + keyring.previous {
            subkeys[key.id] = SecureBuffer.make(count: 32, guarded: true) { output in
                Self.subkeyLabel.withUnsafeBytes { label in
                    key.material.withUnsafeBytes { master in Sodium.keyedHash(into: output, message: label, key: master)
                    }
                }
            }
        }
        self.subkeys = subkeys
        currentKeyID = keyring.current.id
    }

    /// Whether events authenticated under `keyID` can be checked.
    package func knows(_ keyID: KeyID) -> Bool { subkeys[keyID] != nil }

    /// The MAC of `message` under the audit subkey of `keyID`; nil when that key is not in the keyring.
    package func mac(_ message: [UInt8], keyID: KeyID) -> [UInt8]? {
        guard let subkey = subkeys[keyID] else { return nil }
        var output = [UInt8](repeating: 0, count: AuditChain.digestBytes)
        output.withUnsafeMutableBytes { output in
            message.withUnsafeBytes { message in
                subkey.withUnsafeBytes { key in Sodium.keyedHash(into: output, message: message, key: key) }
            }
        }
        return output
    }

    /// Whether `mac` authenticates `message` under `keyID`, compared in constant time; nil when the key is unknown.
    package func check(_ mac: [UInt8], _ message: [UInt8], keyID: KeyID) -> Bool? {
        guard let expected = self.mac(message, keyID: keyID) else { return nil }
        return expected.withUnsafeBytes { lhs in mac.withUnsafeBytes { rhs in Sodium.constantTimeEqual(lhs, rhs) } }
    }

    /// What an event's MAC authenticates: its digest, which commits to it and to every event before it.
    package static func eventMessage(_ digest: [UInt8]) -> [UInt8] { Array("event".utf8) + digest }

    /// What a chain head's MAC authenticates.
    package static func headMessage(chain: String, _ head: AuditHead) -> [UInt8] {
        AuditChain.position("head", chain: chain, sequence: head.sequence, digest: head.digest)
    }

    /// What a prune anchor's MAC authenticates: the chain's digest at the last pruned event.
    package static func anchorMessage(chain: String, _ head: AuditHead) -> [UInt8] {
        AuditChain.position("anchor", chain: chain, sequence: head.sequence, digest: head.digest)
    }

    /// `event` (its sequence already set to follow `head`) sealed into its chain: its MAC, the new head, and the
    /// head's MAC, all under the current key.
    package func append(_ event: AuditEvent, after head: AuditHead) -> AuditRecord {
        let digest = AuditChain.digest(after: head.digest, event)
        let next = AuditHead(sequence: event.sequence, digest: digest)
        return AuditRecord(
            event: event, mac: mac(Self.eventMessage(digest), keyID: currentKeyID)!, head: next,
            headMAC: mac(Self.headMessage(chain: event.chain, next), keyID: currentKeyID)!)
    }
}
