import Foundation

/// Recently derived subkeys, so that a service reading the same rows again skips the BLAKE2b derivation.
///
/// A two-way set-associative table: a cheap hash of a context's names picks a pair of slots, and a hit is
/// confirmed by comparing the master key (by identity), field, and the bytes of provider and client id in full
/// (the hash only picks the pair, so a crafted collision evicts an entry but can never return another row's
/// subkey). With pairs, a service's working set fills the table without the evictions a direct-mapped table
/// suffers when two of its rows hash alike. The subkeys themselves live in
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

    /// - Parameter capacity: a power of two, at least 2.
    init(capacity: Int = 4096) {
        precondition(capacity > 1 && capacity & (capacity - 1) == 0, "the capacity must be a power of two, at least 2")
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
        let first = Self.hash(context, key.material) & mask & ~1
        lock.lock()
        defer { lock.unlock() }
        for index in first...first + 1 where matches(slots[index], key: key, context: context) {
            output.copyMemory(
                from: UnsafeRawBufferPointer(start: subkeys + index * Sodium.keyBytes, count: Sodium.keyBytes))
            return true
        }
        return false
    }

    /// Bytes, not `String ==`: canonically equivalent ids are different rows with different subkeys.
    private func matches(_ slot: Slot?, key: VaultKey, context: SealContext) -> Bool {
        guard let slot else { return false }
        return slot.master === key.material.storage && slot.field == context.field
            && slot.clientID.hasSameBytes(as: context.clientID) && slot.provider.hasSameBytes(as: context.provider)
    }

    /// Remembers `subkey` (32 bytes) for (key, context). Two contexts can share a hash's pair of slots; a third
    /// evicts the older of them.
    func store(key: VaultKey, context: SealContext, subkey: UnsafeRawBufferPointer) {
        let first = Self.hash(context, key.material) & mask & ~1
        let slot = Slot(
            master: key.material.storage, field: context.field, provider: context.provider, clientID: context.clientID)
        lock.lock()
        defer { lock.unlock() }
        // The newer entry sits first: move the first one to the second place, then write the first.
        slots[first + 1] = slots[first]
        (subkeys + (first + 1) * Sodium.keyBytes).copyMemory(
            from: subkeys + first * Sodium.keyBytes, byteCount: Sodium.keyBytes)
        slots[first] = slot
        UnsafeMutableRawBufferPointer(start: subkeys + first * Sodium.keyBytes, count: Sodium.keyBytes)
            .copyMemory(from: subkey)
    }

    /// A multiply-rotate hash of the field, provider and client id, 8 bytes at a time, mixed with the master
    /// key's identity and finished with MurmurHash3's avalanche step, so that ids differing only in their last
    /// characters (`client-17`, `client-18`) still spread over the whole table. It only picks a pair of slots.
    static func hash(_ context: SealContext, _ master: SecureBuffer) -> Int {
        var hash = UInt64(UInt(bitPattern: ObjectIdentifier(master.storage))) ^ (context.field == .accessToken ? 1 : 2)
        hash = mix(hash, context.provider)
        hash = mix(hash, context.clientID)
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash &*= 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
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
        return (mixed << 29) | (mixed >> 35)
    }
}
