/// Memory for secret bytes that is wiped when released.
///
/// Keys use libsodium's guarded allocation (`sodium_malloc`: locked into RAM, surrounded by guard pages,
/// read-only except while being written). Tokens, which are many and short-lived, live in the object's own
/// allocation (one `malloc` per secret) and are zeroed with `sodium_memzero` in `deinit`: guarded pages cost
/// several system calls each.
package struct SecureBuffer: @unchecked Sendable {
    // @unchecked: the bytes are written only while the buffer is made and never mutated afterwards.
    // (ManagedBuffer, which keeps header and bytes in one allocation, cannot itself be Sendable.)
    let storage: Storage

    final class Storage: ManagedBuffer<Header, UInt8> {
        deinit {
            withUnsafeMutablePointers { header, elements in
                if let guarded = header.pointee.guarded {
                    Sodium.makeReadWrite(guarded)  // sodium_free wipes the bytes itself.
                    Sodium.guardedFree(guarded)
                } else {
                    Sodium.zero(UnsafeMutableRawBufferPointer(start: elements, count: header.pointee.count))
                }
            }
        }
    }

    struct Header {
        let count: Int
        /// The `sodium_malloc` memory holding the bytes of a guarded buffer; nil when they follow the header.
        let guarded: UnsafeMutableRawPointer?
    }

    /// Makes a buffer of `count` bytes that `initializer` fills. Returns nil (after wiping) when it returns false.
    package static func make(
        count: Int, guarded: Bool, initializingWith initializer: (UnsafeMutableRawBufferPointer) -> Bool
    ) -> SecureBuffer? {
        if guarded {
            let pointer = Sodium.guardedAllocate(max(count, 1))
            let bytes = UnsafeMutableRawBufferPointer(start: pointer, count: count)
            guard initializer(bytes) else {
                Sodium.zero(bytes)
                Sodium.guardedFree(pointer)
                return nil
            }
            Sodium.makeReadOnly(pointer)
            return SecureBuffer(
                storage: unsafeDowncast(
                    Storage.create(minimumCapacity: 0) { _ in Header(count: count, guarded: pointer) },
                    to: Storage.self))
        }
        let storage = unsafeDowncast(
            Storage.create(minimumCapacity: count) { _ in Header(count: count, guarded: nil) }, to: Storage.self)
        let filled = storage.withUnsafeMutablePointerToElements { elements in
            initializer(UnsafeMutableRawBufferPointer(start: elements, count: count))
        }
        return filled ? SecureBuffer(storage: storage) : nil  // an unfilled buffer is wiped by its deinit
    }

    package static func make(
        count: Int, guarded: Bool = false, filling initializer: (UnsafeMutableRawBufferPointer) -> Void
    ) -> SecureBuffer {
        make(
            count: count, guarded: guarded,
            initializingWith: { buffer in
                initializer(buffer)
                return true
            })!
    }

    package static func make(copying bytes: UnsafeRawBufferPointer, guarded: Bool = false) -> SecureBuffer {
        make(
            count: bytes.count, guarded: guarded,
            filling: { buffer in
                if bytes.count > 0 { buffer.copyMemory(from: bytes) }
            })
    }

    package var count: Int { storage.header.count }

    package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeMutablePointers { header, elements in
            try body(
                UnsafeRawBufferPointer(
                    start: header.pointee.guarded ?? UnsafeMutableRawPointer(elements), count: header.pointee.count))
        }
    }

    package func constantTimeEquals(_ other: SecureBuffer) -> Bool {
        withUnsafeBytes { lhs in other.withUnsafeBytes { rhs in Sodium.constantTimeEqual(lhs, rhs) } }
    }
}
