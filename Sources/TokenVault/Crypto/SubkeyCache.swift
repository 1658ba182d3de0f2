import Foundation
import Synchronization

/// Recently derived subkeys, so that a service reading the same rows again skips the BLAKE2b derivation.
///
/// An entry is a row (master key, provider, client id) and holds the subkeys of both its fields side by side in
/// one 64-byte line, so that sealing or opening both tokens of a row finds the second subkey next to the first.
/// The table is two-way set-associative: a hash of the row's names picks a pair of entries, and a hit is
/// confirmed by comparing the master key (by identity) and the bytes of provider and client id in full (the hash
/// only picks the pair, so a crafted collision evicts an entry but can never return another row's subkey). With
/// pairs, a service's working set fills the table without the evictions a direct-mapped table suffers when two of
/// its rows hash alike. The subkeys themselves live in one `sodium_malloc` allocation (guard pages, locked into
/// RAM, left out of core dumps), wiped when the cache is released; a lookup copies a subkey (32 bytes) or a
/// row's line (64 bytes, a half without its field's bit being zero) out under the lock, into a buffer the caller
/// wipes after use. A subkey opens only its own field of its own row, so a cached
/// subkey exposes far less than the master key.
final class SubkeyCache: @unchecked Sendable {
    // @unchecked: `entries` and the bytes behind `subkeys` are guarded by `lock`.
    private struct Entry {
        /// Held, so that its identity cannot pass to another key while the entry exists.
        var master: SecureBuffer.Storage
        var provider: String
        var clientID: String
        /// Which fields' subkeys are filled in: bit 0 the access token's, bit 1 the refresh token's.
        var fields: UInt8
    }

    private static let rowBytes = 2 * Sodium.keyBytes
    /// A futex word in this object rather than a Foundation lock: nothing to call into on a cold path.
    private let lock = Mutex(())
    /// A fixed buffer rather than an array: no copy-on-write or exclusivity checks on the hot path.
    private let entries: UnsafeMutablePointer<Entry?>
    private let subkeys: UnsafeMutableRawPointer
    private let mask: Int

    /// - Parameter capacity: rows, a power of two, at least 2.
    init(capacity: Int = 4096) {
        precondition(capacity > 1 && capacity & (capacity - 1) == 0, "the capacity must be a power of two, at least 2")
        entries = .allocate(capacity: capacity)
        entries.initialize(repeating: nil, count: capacity)
        subkeys = Sodium.guardedAllocate(capacity * Self.rowBytes)
        mask = capacity - 1
    }

    deinit {
        entries.deinitialize(count: capacity)
        entries.deallocate()
        Sodium.guardedFree(subkeys)  // sodium_free wipes the bytes itself.
    }

    var capacity: Int { mask + 1 }

    private static func bit(_ field: TokenField) -> UInt8 { field == .accessToken ? 1 : 2 }

    /// Index of the first of the pair of entries a row hashes to.
    private func pair(_ key: VaultKey, _ provider: String, _ clientID: String) -> Int {
        Self.hash(provider: provider, clientID: clientID, master: key.material) & mask & ~1
    }

    /// The 64 bytes of entry `index`: the access token's subkey, then the refresh token's.
    private func line(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: subkeys + index * Self.rowBytes, count: Self.rowBytes)
    }

    private func subkey(_ index: Int, _ field: TokenField) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(
            rebasing: line(index)[field == .accessToken ? 0..<Sodium.keyBytes : Sodium.keyBytes..<Self.rowBytes])
    }

    /// The entry of the pair at `first` that holds the row, if one does. Call with `lock` held.
    /// Bytes, not `String ==`: canonically equivalent ids are different rows with different subkeys.
    private func entryIndex(_ first: Int, _ key: VaultKey, _ provider: String, _ clientID: String) -> Int? {
        (first...first + 1).first { index in
            guard let entry = entries[index] else { return false }
            return entry.master === key.material.storage && entry.clientID.hasSameBytes(as: clientID)
                && entry.provider.hasSameBytes(as: provider)
        }
    }

    /// Where a row's entries are: its pair, found by hashing its names once for a prefetch and the lookup after it.
    struct Slot {
        fileprivate let first: Int
    }

    func slot(key: VaultKey, provider: String, clientID: String) -> Slot {
        Slot(first: pair(key, provider, clientID))
    }

    /// Starts loading a row's pair of entries and their subkeys into the CPU's caches, so that the lookup a moment
    /// later does not wait for memory (the table is large and, between two stores, cold).
    func prefetch(_ slot: Slot) {
        let first = slot.first
        Sodium.prefetch(UnsafeRawPointer(entries + first))
        Sodium.prefetch(UnsafeRawPointer(entries + first + 1))
        Sodium.prefetch(UnsafeRawPointer(line(first).baseAddress!))
        Sodium.prefetch(UnsafeRawPointer(line(first + 1).baseAddress!))
    }

    /// Copies the cached subkeys of a row into `output` (64 bytes: the access token's, then the refresh token's)
    /// under one lock and one hash; returns which were found (bit 0 access, bit 1 refresh).
    func lookupRow(
        key: VaultKey, provider: String, clientID: String, slot: Slot? = nil, into output: UnsafeMutableRawBufferPointer
    ) -> UInt8 {
        let first = slot?.first ?? pair(key, provider, clientID)
        precondition(first & ~mask == 0, "a cache slot from another cache")
        return lock.withLock { _ in
            guard let index = entryIndex(first, key, provider, clientID) else { return 0 }
            output.copyMemory(from: UnsafeRawBufferPointer(line(index)))
            return entries[index]!.fields
        }
    }

    /// Copies the cached subkey for (key, context) into `output` (32 bytes); false when it is not cached.
    func lookup(key: VaultKey, context: SealContext, into output: UnsafeMutableRawBufferPointer) -> Bool {
        let first = pair(key, context.provider, context.clientID)
        return lock.withLock { _ in
            guard let index = entryIndex(first, key, context.provider, context.clientID),
                entries[index]!.fields & Self.bit(context.field) != 0
            else { return false }
            output.copyMemory(from: UnsafeRawBufferPointer(subkey(index, context.field)))
            return true
        }
    }

    /// Remembers `subkey` (32 bytes) for (key, context). Two rows can share a hash's pair of entries; a third
    /// evicts the older of them.
    func store(key: VaultKey, context: SealContext, subkey value: UnsafeRawBufferPointer) {
        let first = pair(key, context.provider, context.clientID)
        lock.withLock { _ in
            if let index = entryIndex(first, key, context.provider, context.clientID) {
                entries[index]!.fields |= Self.bit(context.field)
                subkey(index, context.field).copyMemory(from: value)
                return
            }
            // The newer row sits first: move the first entry to the second place, then write the first.
            entries[first + 1] = entries[first]
            line(first + 1).copyMemory(from: UnsafeRawBufferPointer(line(first)))
            entries[first] = Entry(
                master: key.material.storage, provider: context.provider, clientID: context.clientID,
                fields: Self.bit(context.field))
            // The other field's half still holds the moved row's subkey: wipe it, though no lookup would return it.
            Sodium.zero(line(first))
            subkey(first, context.field).copyMemory(from: value)
        }
    }

    /// A multiply-rotate hash of the provider and client id (not the field: a row's two subkeys share an entry),
    /// 8 bytes at a time, mixed with the master key's identity and finished with MurmurHash3's avalanche step, so
    /// that ids differing only in their last characters (`client-17`, `client-18`) still spread over the whole
    /// table. It only picks a pair of entries.
    static func hash(provider: String, clientID: String, master: SecureBuffer) -> Int {
        var hash = UInt64(UInt(bitPattern: ObjectIdentifier(master.storage)))
        hash = mix(hash, provider)
        hash = mix(hash, clientID)
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
