/// A 32-byte secretbox master key, held in guarded memory (`sodium_malloc`: locked, read-only, wiped on release).
///
/// Prints as `<redacted>`; two keys compare in constant time.
public struct VaultKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    static let byteCount = 32
    static let keyIDLabel = Array("token-vault/key-id/v1".utf8)

    let material: SecureBuffer
    /// The key's id, derived from the key: what rows, logs and reports name instead of the key.
    public let id: KeyID

    /// Decodes a key from standard base64 (exactly 32 bytes). `name` is used in error messages, never the value.
    ///
    /// - Throws: `.keyConfiguration` when `base64` is empty, not standard base64, or not 32 bytes long.
    public init(base64: String, name: String = "key") throws(VaultError) {
        let trimmed = base64.trimmingASCIIWhitespace()
        let decoded =
            trimmed.utf8.withContiguousStorageIfAvailable { text in
                Self.decodeKey(UnsafeRawBufferPointer(text))
            } ?? Array(trimmed.utf8).withUnsafeBytes { Self.decodeKey($0) }
        switch decoded {
        case .success(let material):
            self.init(material: material)
        case .failure(let problem):
            throw VaultError(.keyConfiguration, "\(name) \(problem). \(Self.howToMakeAKey)")
        }
    }

    /// A new random key.
    public static func generate() -> VaultKey {
        VaultKey(material: SecureBuffer.make(count: byteCount, guarded: true, filling: { Sodium.randomBytes($0) }))
    }

    init(material: SecureBuffer) {
        self.material = material
        var digest = [UInt8](repeating: 0, count: 16)
        digest.withUnsafeMutableBytes { output in
            Self.keyIDLabel.withUnsafeBytes { label in
                material.withUnsafeBytes { key in Sodium.keyedHash(into: output, message: label, key: key) }
            }
        }
        id = KeyID(rawValue: hexString(digest))
    }

    /// The key as standard base64, for `token-vault keygen`. The only way the key bytes leave guarded memory.
    package func exportBase64() -> String {
        material.withUnsafeBytes { Sodium.encodeBase64($0) }
    }

    public static func == (lhs: VaultKey, rhs: VaultKey) -> Bool {
        lhs.material.constantTimeEquals(rhs.material)
    }

    public var description: String { "VaultKey(id: \(id), material: <redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["id": id], displayStyle: .struct) }

    static let howToMakeAKey =
        "A key is standard base64 of exactly 32 random bytes, as `head -c 32 /dev/urandom | base64` prints."

    enum DecodeProblem: Error, CustomStringConvertible {
        case empty, notBase64, wrongLength(Int)
        var description: String {
            switch self {
            case .empty: return "is empty"
            case .notBase64: return "is not valid standard base64"
            case .wrongLength(let count): return "decodes to \(count) bytes, not 32"
            }
        }
    }

    static func decodeKey(_ text: UnsafeRawBufferPointer) -> Result<SecureBuffer, DecodeProblem> {
        guard text.count > 0 else { return .failure(.empty) }
        // Room for more than 32 bytes, so that a too-long key is reported as such rather than as bad base64.
        let capacity = text.count
        var length = 0
        let buffer = SecureBuffer.make(
            count: capacity, guarded: true,
            initializingWith: { output in
                if let decoded = Sodium.decodeBase64(text, into: output) {
                    length = decoded
                    return true
                }
                return false
            })
        guard let buffer else { return .failure(.notBase64) }
        guard length == byteCount else { return .failure(.wrongLength(length)) }
        return .success(
            buffer.withUnsafeBytes {
                SecureBuffer.make(copying: UnsafeRawBufferPointer(rebasing: $0[0..<byteCount]), guarded: true)
            })
    }
}

func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

extension StringProtocol {
    /// Trims spaces, tabs, CR and LF. Works on Unicode scalars: "\r\n" is one Character and would not match.
    func trimmingASCIIWhitespace() -> Substring {
        let isSpace: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }
        let scalars = Substring(self).unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isSpace($0) })!
        return Substring(scalars[first...last])
    }
}
