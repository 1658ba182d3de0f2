/// JSON (RFC 8259) parsed with the line each value starts on, so that a configuration file's mistakes can be
/// reported at their line. Small and strict: no comments, no trailing commas, no duplicate keys.
indirect enum LocatedJSON: Sendable {
    case object([(key: String, value: Located)])
    case array([Located])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    /// A value and the line (from 1) it starts on.
    struct Located: Sendable {
        let value: LocatedJSON
        let line: Int
    }

    /// A syntax error and its line.
    struct SyntaxError: Error {
        let line: Int
        let message: String
    }

    /// The name of the value's type, for messages ("a string", "an object").
    var kind: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "true or false"
        case .null: return "null"
        }
    }

    static func parse(_ bytes: [UInt8]) throws(SyntaxError) -> Located {
        var parser = Parser(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == bytes.count else { throw parser.error("unexpected text after the end of the JSON") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0
        var line = 1

        func error(_ message: String) -> SyntaxError { SyntaxError(line: line, message: message) }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[index]) {
                if bytes[index] == 0x0a { line += 1 }
                index += 1
            }
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws(SyntaxError) {
            guard index < bytes.count, bytes[index] == byte else { throw error("expected \(what)") }
            index += 1
        }

        mutating func value(depth: Int) throws(SyntaxError) -> Located {
            guard depth < 64 else { throw error("nested too deeply") }
            guard index < bytes.count else { throw error("unexpected end of the file; the JSON is incomplete") }
            let start = line
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(key: String, value: Located)] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return Located(value: .object(members), line: start)
                }
                while true {
                    skipSpace()
                    let keyLine = line
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                        throw error("expected a field name in double quotes (a trailing comma?)")
                    }
                    let key = try string()
                    guard !members.contains(where: { $0.key == key }) else {
                        throw SyntaxError(line: keyLine, message: "the field '\(key)' appears twice")
                    }
                    skipSpace()
                    try expect(UInt8(ascii: ":"), "':' after the field name")
                    skipSpace()
                    members.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard index < bytes.count else { throw error("unexpected end of the file inside an object") }
                    if bytes[index] == UInt8(ascii: ",") {
                        index += 1
                        continue
                    }
                    try expect(UInt8(ascii: "}"), "',' or '}' (a missing comma?)")
                    return Located(value: .object(members), line: start)
                }
            case UInt8(ascii: "["):
                index += 1
                var items: [Located] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return Located(value: .array(items), line: start)
                }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard index < bytes.count else { throw error("unexpected end of the file inside an array") }
                    if bytes[index] == UInt8(ascii: ",") {
                        index += 1
                        continue
                    }
                    try expect(UInt8(ascii: "]"), "',' or ']' (a missing comma?)")
                    return Located(value: .array(items), line: start)
                }
            case UInt8(ascii: "\""):
                return Located(value: .string(try string()), line: start)
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                for (word, value) in [("true", LocatedJSON.bool(true)), ("false", .bool(false)), ("null", .null)] {
                    let text = Array(word.utf8)
                    if bytes[index...].starts(with: text) {
                        index += text.count
                        return Located(value: value, line: start)
                    }
                }
                throw error("unexpected text (true, false and null are lower case; strings need double quotes)")
            default:
                var end = index
                while end < bytes.count, "+-0123456789.eE".utf8.contains(bytes[end]) { end += 1 }
                guard end > index, let number = Double(String(decoding: bytes[index..<end], as: UTF8.self)) else {
                    throw error("unexpected character; strings need double quotes")
                }
                index = end
                return Located(value: .number(number), line: start)
            }
        }

        mutating func string() throws(SyntaxError) -> String {
            index += 1  // the opening quote
            var out: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { break }
                    let escaped = bytes[index]
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                    case UInt8(ascii: "n"): out.append(0x0a)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0d)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0c)
                    case UInt8(ascii: "u"):
                        guard index + 4 <= bytes.count,
                            let code = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16),
                            let scalar = Unicode.Scalar(code)
                        else { throw error("a \\u escape needs four hex digits of a Unicode scalar") }
                        index += 4
                        out += Array(String(Character(scalar)).utf8)
                    default:
                        throw error("unknown escape '\\\(Character(Unicode.Scalar(escaped)))' in a string")
                    }
                case 0x0a:
                    throw error("a line break inside a string (a missing closing quote?)")
                default:
                    guard byte >= 0x20 else { throw error("a control character inside a string") }
                    out.append(byte)
                }
            }
            throw error("unexpected end of the file inside a string (a missing closing quote?)")
        }
    }
}
