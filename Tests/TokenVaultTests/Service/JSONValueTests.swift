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
}
