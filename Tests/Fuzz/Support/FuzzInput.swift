/// Reads a fuzzer's bytes as a sequence of small choices and byte strings, the way libFuzzer's
/// `FuzzedDataProvider` does: a short input reads as zeros and empty strings, so every input means something.
package struct FuzzInput {
    private let bytes: [UInt8]
    private var offset = 0

    package init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The next byte; 0 past the end.
    package mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A byte string of up to 255 bytes: a length byte, then that many bytes (fewer at the end of the input).
    package mutating func chunk() -> [UInt8] {
        let length = Int(byte())
        let end = min(bytes.count, offset + length)
        defer { offset = end }
        return Array(bytes[offset..<end])
    }

    /// Everything not read yet.
    package mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[min(offset, bytes.count)...])
    }
}
