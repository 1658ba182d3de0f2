/// Memory for secret bytes that is wiped when released.
///
/// Keys use libsodium's guarded allocation (`sodium_malloc`: locked into RAM, surrounded by guard pages,
/// read-only except while being written). Tokens, which are many and short-lived, use ordinary heap memory
/// that is zeroed with `sodium_memzero` in `deinit`: guarded pages cost several system calls each.
final class SecureBuffer: @unchecked Sendable {
    // @unchecked: the bytes are written only during initialization and never mutated afterwards.
    let count: Int
    private let pointer: UnsafeMutableRawPointer
    private let guarded: Bool

    /// Allocates `count` bytes and lets `initializer` fill them. Returns nil (after wiping) when it returns false.
    init?(count: Int, guarded: Bool, initializingWith initializer: (UnsafeMutableRawBufferPointer) -> Bool) {
        let pointer =
            guarded
            ? Sodium.guardedAllocate(max(count, 1))
            : UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
        let buffer = UnsafeMutableRawBufferPointer(start: pointer, count: count)
        guard initializer(buffer) else {
            // Fail before any stored property is set, so that deinit does not run on a half-made buffer.
            Sodium.zero(buffer)
            Self.release(pointer, guarded: guarded)
            return nil
        }
        if guarded { Sodium.makeReadOnly(pointer) }
        self.count = count
        self.pointer = pointer
        self.guarded = guarded
    }

    convenience init(count: Int, guarded: Bool = false, filling initializer: (UnsafeMutableRawBufferPointer) -> Void) {
        self.init(
            count: count, guarded: guarded,
            initializingWith: { buffer in
                initializer(buffer)
                return true
            })!
    }

    convenience init(copying bytes: UnsafeRawBufferPointer, guarded: Bool = false) {
        self.init(
            count: bytes.count, guarded: guarded,
            filling: { buffer in
                if bytes.count > 0 { buffer.copyMemory(from: bytes) }
            })
    }

    deinit {
        if guarded {
            Sodium.makeReadWrite(pointer)  // sodium_free wipes the bytes itself.
        } else {
            Sodium.zero(UnsafeMutableRawBufferPointer(start: pointer, count: count))
        }
        Self.release(pointer, guarded: guarded)
    }

    private static func release(_ pointer: UnsafeMutableRawPointer, guarded: Bool) {
        if guarded {
            Sodium.guardedFree(pointer)
        } else {
            pointer.deallocate()
        }
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    func constantTimeEquals(_ other: SecureBuffer) -> Bool {
        withUnsafeBytes { lhs in other.withUnsafeBytes { rhs in Sodium.constantTimeEqual(lhs, rhs) } }
    }
}
