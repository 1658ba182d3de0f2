import Foundation

/// A (client_id, provider) pair compared byte for byte, as PostgreSQL compares the text columns.
///
/// Swift's `String ==` treats canonically equivalent strings as equal ("café" precomposed and decomposed), but
/// PostgreSQL stores them as two rows and the sealing context of each is different, so every comparison of ids
/// that decides which row something belongs to must look at the bytes.
struct RowKey: Hashable, Sendable {
    let client: String
    let provider: String

    static func == (lhs: RowKey, rhs: RowKey) -> Bool {
        lhs.client.hasSameBytes(as: rhs.client) && lhs.provider.hasSameBytes(as: rhs.provider)
    }

    func hash(into hasher: inout Hasher) {
        client.hashBytes(into: &hasher)
        hasher.combine(UInt8(0xff))  // never inside UTF-8
        provider.hashBytes(into: &hasher)
    }
}

extension String {
    /// Whether the two strings have the same UTF-8 bytes (not merely the same characters).
    func hasSameBytes(as other: String) -> Bool {
        let count = utf8.count
        guard count == other.utf8.count else { return false }
        guard count > 0 else { return true }
        let compared = utf8.withContiguousStorageIfAvailable { lhs in
            other.utf8.withContiguousStorageIfAvailable { rhs in memcmp(lhs.baseAddress!, rhs.baseAddress!, count) == 0
            }
        }
        return (compared ?? nil) ?? utf8.elementsEqual(other.utf8)
    }

    func hashBytes(into hasher: inout Hasher) {
        hasher.combine(utf8.count)
        if utf8.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
            for byte in utf8 { hasher.combine(byte) }
        }
    }
}
