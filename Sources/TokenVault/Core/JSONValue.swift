import Foundation

/// A JSON value, for provider metadata (Zoho's `api_domain` and the like) stored in the `metadata` column.
///
/// Metadata is stored as plaintext JSON: never put a secret in it (``TokenResponse`` drops keys that look like
/// credentials).
public enum JSONValue: Sendable, Hashable, Codable {
    /// A JSON string.
    case string(String)
    /// A JSON number; integers above 2^53 lose precision, as in JavaScript.
    case number(Double)
    /// `true` or `false`.
    case bool(Bool)
    /// A JSON array.
    case array([JSONValue])
    /// A JSON object; the order of its keys is not kept.
    case object([String: JSONValue])
    /// JSON `null`.
    case null

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }

    /// The string, if this is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number, if this is a number or a string holding one (some providers quote numbers).
    public var numberValue: Double? {
        switch self {
        case .number(let value): return value
        case .string(let value): return Double(value)
        default: return nil
        }
    }
}

extension JSONValue {
    /// Compact JSON with sorted keys, written by hand as UTF-8: JSONEncoder costs more than the rest of a store.
    static func serialize(_ object: [String: JSONValue]) -> String {
        var nul = false
        return serialize(object, nul: &nul)
    }

    /// `serialize`, refusing a NUL character (U+0000) in a key or a string, which PostgreSQL's `jsonb` cannot
    /// store (it fails the whole statement with SQLSTATE 22P05).
    static func serializeForStorage(_ object: [String: JSONValue]) throws(VaultError) -> String {
        var nul = false
        let json = serialize(object, nul: &nul)
        guard !nul else { throw nulInMetadata }
        return json
    }

    static let nulInMetadata = VaultError(
        .invalidInput,
        "the token response's metadata holds a NUL character (\\u0000) in a key or value, which PostgreSQL cannot "
            + "store; remove it.")

    private static func serialize(_ object: [String: JSONValue], nul: inout Bool) -> String {
        if object.isEmpty { return "{}" }
        var out: [UInt8] = []
        out.reserveCapacity(64)
        JSONValue.object(object).write(to: &out, nul: &nul)
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a JSON object (the `metadata` column); an unreadable one reads as empty.
    static func parseObject(_ json: String) -> [String: JSONValue] {
        if json == "{}" { return [:] }
        return (try? JSONDecoder().decode([String: JSONValue].self, from: Data(json.utf8))) ?? [:]
    }

    private func write(to out: inout [UInt8], nul: inout Bool) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let value):
            if value.isFinite, value == value.rounded(), abs(value) < 9_007_199_254_740_992 {
                out.append(contentsOf: String(Int64(value)).utf8)
            } else if value.isFinite {
                out.append(contentsOf: "\(value)".utf8)
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case .string(let value): Self.writeString(value, to: &out, nul: &nul)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                value.write(to: &out, nul: &nul)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            if object.count == 1, let (key, value) = object.first {  // the usual case (api_domain): no sorting
                Self.writeString(key, to: &out, nul: &nul)
                out.append(UInt8(ascii: ":"))
                value.write(to: &out, nul: &nul)
            } else {
                for (index, key) in object.keys.sorted().enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    Self.writeString(key, to: &out, nul: &nul)
                    out.append(UInt8(ascii: ":"))
                    object[key]!.write(to: &out, nul: &nul)
                }
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string: `"` and `\` escaped, control characters as escapes, everything else (UTF-8) as is.
    private static func writeString(_ value: String, to out: inout [UInt8], nul: inout Bool) {
        out.append(UInt8(ascii: "\""))
        // Most strings (URLs, ids) need no escape: copy them whole.
        var value = value
        let copied = value.withUTF8 { bytes in
            guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") })
            else { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if copied {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            let escape: UInt8? =
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): byte
                case UInt8(ascii: "\n"): UInt8(ascii: "n")
                case UInt8(ascii: "\r"): UInt8(ascii: "r")
                case UInt8(ascii: "\t"): UInt8(ascii: "t")
                default: nil
                }
            if let escape {
                out.append(UInt8(ascii: "\\"))
                out.append(escape)
                continue
            }
            if byte < 0x20 {
                if byte == 0 { nul = true }
                let hex = { (nibble: UInt8) in
                    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
                }
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex(byte >> 4))
                out.append(hex(byte & 0xf))
            } else {
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSONValue {
    /// Whether a key or a string anywhere in `object` holds U+0000.
    static func containsNUL(_ object: [String: JSONValue]) -> Bool {
        object.contains { key, value in key.utf8.contains(0) || value.containsNUL }
    }

    private var containsNUL: Bool {
        switch self {
        case .string(let value): value.utf8.contains(0)
        case .array(let values): values.contains { $0.containsNUL }
        case .object(let object): Self.containsNUL(object)
        case .number, .bool, .null: false
        }
    }

    /// `object` with every U+0000 removed from its keys and strings (keys that then collide: the later wins).
    static func removingNULs(_ object: [String: JSONValue]) -> [String: JSONValue] {
        var clean: [String: JSONValue] = [:]
        for (key, value) in object { clean[key.removingNULs] = value.removingNULs }
        return clean
    }

    private var removingNULs: JSONValue {
        switch self {
        case .string(let value): .string(value.removingNULs)
        case .array(let values): .array(values.map(\.removingNULs))
        case .object(let object): .object(Self.removingNULs(object))
        case .number, .bool, .null: self
        }
    }
}

extension String {
    /// This string without its U+0000 characters (itself when it has none).
    var removingNULs: String { utf8.contains(0) ? String(unicodeScalars.filter { $0 != "\u{0}" }) : self }
}
