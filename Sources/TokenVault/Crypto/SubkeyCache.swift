import Foundation

/// Recently derived subkeys, so that a service reading the same rows again skips the BLAKE2b derivation.
///
/// Bounded (it is emptied when full), keyed by the master key's identity and the context. Entries are in memory
/// that is zeroed when they are dropped. A subkey opens only its own field of its own row, so the exposure of a
/// cached subkey is far smaller than that of the master key, which stays in guarded memory.
final class SubkeyCache: @unchecked Sendable {
    // @unchecked: `entries` is guarded by `lock`.
    struct Key: Hashable {
        let master: ObjectIdentifier
        let field: TokenField
        let provider: String
        let clientID: String
    }

    private let lock = NSLock()
    private var entries: [Key: SecureBuffer] = [:]
    /// The most recent hits, checked by equality before hashing: a service asks for the same few rows often.
    private var recent: [(key: Key, subkey: SecureBuffer)] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    func subkey(key: VaultKey, context: SealContext) -> SecureBuffer {
        let cacheKey = Key(
            master: ObjectIdentifier(key.material), field: context.field, provider: context.provider,
            clientID: context.clientID)
        let cached = lock.withLock { () -> SecureBuffer? in
            for entry in recent where entry.key == cacheKey { return entry.subkey }
            guard let found = entries[cacheKey] else { return nil }
            remember(cacheKey, found)
            return found
        }
        if let cached { return cached }
        let derived = Sealer.deriveSubkey(key: key, context: context)
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[cacheKey] = derived
            remember(cacheKey, derived)
        }
        return derived
    }

    /// Must be called with the lock held.
    private func remember(_ key: Key, _ subkey: SecureBuffer) {
        if recent.count < 4 {
            recent.append((key, subkey))
        } else {
            recent[next] = (key, subkey)
            next = (next + 1) % 4
        }
    }
}
