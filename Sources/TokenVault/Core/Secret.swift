/// A secret value, such as an access or refresh token.
///
/// Its bytes are wiped from memory when the last copy is released. It compares in constant time and prints as
/// `<redacted>` however it is printed (`print`, interpolation, `debugPrint`, `dump`, loggers).
/// Call ``reveal()`` at the point where the plaintext is needed, for example to build an `Authorization` header.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    let storage: SecureBuffer

    /// Copies the UTF-8 bytes of `value` into memory that is wiped on release. The string itself cannot be
    /// wiped: make the secret as close as possible to where the value was read.
    public init(_ value: String) {
        var value = value
        storage = value.withUTF8 { SecureBuffer.make(copying: UnsafeRawBufferPointer($0)) }
    }

    /// Copies `bytes` into memory that is wiped on release; wipe your own copy if you can.
    public init(bytes: some Collection<UInt8>) {
        storage = SecureBuffer.make(
            count: bytes.count,
            filling: { buffer in
                _ = buffer.initializeMemory(as: UInt8.self, from: bytes)
            })
    }

    /// A secret over bytes already in wiped memory (a key command's output), without another copy.
    package init(storage: SecureBuffer) {
        self.storage = storage
    }

    /// The number of bytes in the secret (its UTF-8 length for text).
    public var count: Int { storage.count }

    /// The plaintext as a string. Keep the result no longer than needed; Swift strings cannot be wiped.
    public func reveal() -> String {
        storage.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    /// Calls `body` with the secret bytes, without copying them.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes(body)
    }

    public static func == (lhs: Secret, rhs: Secret) -> Bool {
        lhs.storage.constantTimeEquals(rhs.storage)
    }

    /// Whether the bytes are well-formed UTF-8, so that ``reveal()`` returns them unchanged. Checked on the bytes,
    /// without making a `String`, which could not be wiped.
    var isValidUTF8: Bool {
        storage.withUnsafeBytes { bytes in
            // Tokens are ASCII: that case is one pass over the bytes, with no decoding.
            guard bytes.contains(where: { $0 >= 0x80 }) else { return true }
            var iterator = bytes.makeIterator()
            var decoder = UTF8()
            while true {
                switch decoder.decode(&iterator) {
                case .scalarValue: continue
                case .emptyInput: return true
                case .error: return false
                }
            }
        }
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
