import Foundation

/// Recently derived subkeys, so that a service reading the same rows again skips the BLAKE2b derivation.
///
/// A direct-mapped table: a context's slot is picked by a cheap hash of its names, and a hit is confirmed by
/// comparing the master key (by identity), field, and the bytes of provider and client id in full (the hash only picks the slot, so
/// a crafted collision evicts an entry but can never return another row's subkey). The subkeys themselves live in
/// one `sodium_malloc` allocation (guard pages, locked into RAM, left out of core dumps), wiped when the cache is
/// released; a lookup copies the 32 bytes out under the lock, into a buffer the caller wipes after use.
/// A subkey opens only its own field of its own row, so a cached subkey exposes far less than the master key.
final class SubkeyCache: @unchecked Sendable {
    // @unchecked: `slots` and the bytes behind `subkeys` are guarded by `lock`.
    private struct Slot {
        /// Held, so that its identity cannot pass to another key while the entry exists.
        var master: SecureBuffer.Storage
        var field: TokenField
        var provider: String
        var clientID: String
    }

    private let lock = NSLock()
    /// A fixed buffer rather than an array: no copy-on-write or exclusivity checks on the hot path.
    private let slots: UnsafeMutablePointer<Slot?>
    private let subkeys: UnsafeMutableRawPointer
    private let mask: Int

    /// - Parameter capacity: a power of two.
    init(capacity: Int = 4096) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "the capacity must be a power of two")
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: nil, count: capacity)
        subkeys = Sodium.guardedAllocate(capacity * Sodium.keyBytes)
        mask = capacity - 1
    }

    deinit {
        slots.deinitialize(count: capacity)
        slots.deallocate()
        Sodium.guardedFree(subkeys)  // sodium_free wipes the bytes itself.
    }

    var capacity: Int { mask + 1 }

    /// Copies the cached subkey for (key, context) into `output` (32 bytes); false when it is not cached.
    func lookup(key: VaultKey, context: SealContext, into output: UnsafeMutableRawBufferPointer) -> Bool {
        let index = Self.hash(context, key.material) & mask
        lock.lock()
        defer { lock.unlock() }
        // Bytes, not `String ==`: canonically equivalent ids are different rows with different subkeys.
        guard slots[index]?.master === key.material.storage, slots[index]?.field == context.field,
            slots[index]?.clientID.hasSameBytes(as: context.clientID) == true,
            slots[index]?.provider.hasSameBytes(as: context.provider) == true
        else { return false }
        output.copyMemory(
            from: UnsafeRawBufferPointer(start: subkeys + index * Sodium.keyBytes, count: Sodium.keyBytes))
        return true
    }

    /// Remembers `subkey` (32 bytes) for (key, context), replacing whatever shared its slot.
    func store(key: VaultKey, context: SealContext, subkey: UnsafeRawBufferPointer) {
        let index = Self.hash(context, key.material) & mask
        let slot = Slot(
            master: key.material.storage, field: context.field, provider: context.provider, clientID: context.clientID)
        lock.lock()
        defer { lock.unlock() }
        slots[index] = slot
        UnsafeMutableRawBufferPointer(start: subkeys + index * Sodium.keyBytes, count: Sodium.keyBytes)
            .copyMemory(from: subkey)
    }

    /// A multiply-xorshift hash of the field, provider and client id, 8 bytes at a time, mixed with the master
    /// key's identity. It only picks a slot.
    static func hash(_ context: SealContext, _ master: SecureBuffer) -> Int {
        var hash = UInt64(UInt(bitPattern: ObjectIdentifier(master.storage))) ^ (context.field == .accessToken ? 1 : 2)
        hash = mix(hash, context.provider)
        hash = mix(hash, context.clientID)
        return Int(truncatingIfNeeded: hash)
    }

    private static func mix(_ seed: UInt64, _ text: String) -> UInt64 {
        var text = text
        return text.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            var hash = seed
            var offset = 0
            while offset + 8 <= raw.count {
                hash = mix(hash, raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                offset += 8
            }
            var tail = UInt64(raw.count) << 56  // the length keeps "ab" + "c" apart from "a" + "bc"
            var shift: UInt64 = 0
            while offset < raw.count {
                tail |= UInt64(raw[offset]) << shift
                shift += 8
                offset += 1
            }
            return mix(hash, tail)
        }
    }

    @inline(__always)
    private static func mix(_ hash: UInt64, _ word: UInt64) -> UInt64 {
        let mixed = (hash ^ word) &* 0x9e37_79b9_7f4a_7c15
        return mixed ^ (mixed >> 32)
    }
}
