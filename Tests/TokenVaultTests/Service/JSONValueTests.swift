import Foundation
import XCTest

@testable import TokenVault

final class JSONValueTests: XCTestCase {
    func testSerializeRoundTripsThroughFoundation() throws {
        let object: [String: JSONValue] = [
            "api_domain": .string("https://www.zohoapis.eu"), "quote\"and\\slash": .string("line\nbreak\t\u{1}"),
            "n": .number(3600), "f": .number(1.5), "b": .bool(true), "z": .null,
            "a": .array([.number(1), .string("ü東京")]), "o": .object(["k": .string("v")]),
        ]
        let text = JSONValue.serialize(object)
        XCTAssertTrue(text.hasPrefix(#"{"a":[1,"ü東京"],"api_domain":"https://www.zohoapis.eu","b":true"#), text)
        XCTAssertEqual(JSONValue.parseObject(text), object)
        XCTAssertEqual(JSONValue.parseObject("not json"), [:])
    }

    func testStringsAreEscapedExactlyAsJSONRequires() {
        XCTAssertEqual(JSONValue.serialize([:]), "{}")
        XCTAssertEqual(
            JSONValue.serialize(["k": .string("a\"b\\c\nd\re\tf\u{1}g\u{1f}h\u{7f}ü")]),
            #"{"k":"a\"b\\c\nd\re\tf\u0001g\u001fh\#u{7f}ü"}"#)
    }
}
