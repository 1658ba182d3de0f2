import Foundation
import TokenVault

#if canImport(Glibc)
import Glibc
#endif

/// Lines of a file descriptor (standard input by default), each at most `limit` bytes, with memory bounded by the
/// limit: a longer line is skipped as it is read, never held whole, and reported by its length.
package struct LineReader {
    /// One line, without its line break (`\n`, or `\r\n`).
    package enum Line: Equatable {
        case text([UInt8])
        /// A line longer than the limit, of this many bytes; its bytes were not kept.
        case tooLong(Int)
    }

    private let descriptor: Int32
    private let limit: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false
    /// Bytes of an overlong line skipped so far; nil while no line is being skipped.
    private var skipped: Int?

    /// Bytes held now: at most the limit plus one read's worth (64 KiB), however long a line is.
    package var bufferedBytes: Int { buffer.count }

    /// Reads `descriptor` (standard input by default); lines longer than `limit` bytes come back as `.tooLong`.
    package init(descriptor: Int32 = 0, limit: Int = TokenResponse.maximumBytes) {
        self.descriptor = descriptor
        self.limit = limit
    }

    /// The next line; nil at the end of input.
    /// - Throws: an `.invalidInput` `VaultError` when the input cannot be read.
    package mutating func next() throws(VaultError) -> Line? {
        while true {
            if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = newline
                if end > start && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let length = end - start
                let line = Array(buffer[start..<end])
                start = newline + 1
                if let skipped {
                    self.skipped = nil
                    return .tooLong(skipped + length)
                }
                return length > limit ? .tooLong(length) : .text(line)
            }
            if buffer.count - start > limit {
                // No line break within the limit: this line is too long; keep none of it.
                skipped = (skipped ?? 0) + buffer.count - start
                buffer.removeAll(keepingCapacity: true)
                start = 0
            }
            if atEnd {
                guard start < buffer.count || skipped != nil else { return nil }
                let rest = Array(buffer[start...])
                buffer.removeAll()
                start = 0
                if let skipped {
                    self.skipped = nil
                    return .tooLong(skipped + rest.count)
                }
                return rest.count > limit ? .tooLong(rest.count) : .text(rest)
            }
            try fill()
        }
    }

    private mutating func fill() throws(VaultError) {
        if start > 0 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                return
            }
            if count == 0 {
                atEnd = true
                return
            }
            if errno != EINTR {
                throw VaultError(.invalidInput, "cannot read the input: \(String(cString: strerror(errno))).")
            }
        }
    }
}
