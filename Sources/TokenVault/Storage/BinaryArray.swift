/// PostgreSQL's binary array format, so that a whole batch travels as a few parameters of one statement
/// (`unnest($1::bytea[], …)`) instead of one round trip per row.
///
/// Layout: ndim (int32) = 1, has-nulls flag (int32), element type oid (int32), length (int32),
/// lower bound (int32) = 1, then per element its length (int32, -1 for NULL) and bytes. All big-endian.
enum BinaryArray {
    static let byteaOID: Int32 = 17
    static let int8OID: Int32 = 20
    static let textOID: Int32 = 25

    static func encode(elementOID: Int32, _ elements: [[UInt8]?]) -> SQLValue {
        var out: [UInt8] = []
        out.reserveCapacity(20 + elements.reduce(0) { $0 + 4 + ($1?.count ?? 0) })
        append(Int32(1), to: &out)
        append(Int32(elements.contains { $0 == nil } ? 1 : 0), to: &out)
        append(elementOID, to: &out)
        append(Int32(elements.count), to: &out)
        append(Int32(1), to: &out)
        for element in elements {
            if let element {
                append(Int32(element.count), to: &out)
                out.append(contentsOf: element)
            } else {
                append(Int32(-1), to: &out)
            }
        }
        return .bytes(out)
    }

    static func bytea(_ elements: [[UInt8]?]) -> SQLValue { encode(elementOID: byteaOID, elements) }
    static func text(_ elements: [String?]) -> SQLValue {
        encode(elementOID: textOID, elements.map { $0.map { Array($0.utf8) } })
    }
    static func int8(_ elements: [Int64?]) -> SQLValue {
        encode(
            elementOID: int8OID,
            elements.map { $0.map { value in (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } } }
        )
    }

    private static func append(_ value: Int32, to out: inout [UInt8]) {
        let bits = UInt32(bitPattern: value)
        out += [UInt8(bits >> 24), UInt8((bits >> 16) & 0xff), UInt8((bits >> 8) & 0xff), UInt8(bits & 0xff)]
    }
}
