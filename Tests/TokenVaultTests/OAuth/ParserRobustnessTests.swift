import Foundation
import XCTest

@testable import TokenVault

/// The providers file's JSON parser and the callback parser take text from outside: random damage to valid input
/// must end in a result or a VaultError, never a crash, and the parser's lines must stay within the input.
final class ParserRobustnessTests: XCTestCase {
    func testDamagedProvidersFilesAreRefusedNotCrashedOn() {
        let valid = Array(
            """
            {
              "providers": [
                {"name": "a", "token_url": "https://a.example/t", "client_id": "i", "client_secret_env": "S",
                 "metadata_fields": ["token_type"], "authorization_parameters": {"k": "v\\u00e9\\n"},
                 "refresh_rate_limit": {"count": 1e1, "window": 6.5E2}, "revocation_token_in_query": false}
              ]
            }
            """.utf8)
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("{}[]\":,\\ \n\tu0e1-+.truefalsnl".utf8) + [0x00, 0xff, 0x7f]
        for _ in 0..<3000 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[index] = alphabet.randomElement(using: &generator)!
                case 1: bytes.remove(at: index)
                default: bytes.insert(alphabet.randomElement(using: &generator)!, at: index)
                }
                if bytes.isEmpty { bytes = [0x7b] }
            }
            let lines = bytes.filter { $0 == 0x0a }.count + 1
            do {
                _ = try LocatedJSON.parse(bytes)
            } catch {
                XCTAssertTrue((1...lines).contains(error.line), "line \(error.line) of \(lines)")
            }
        }
    }

    func testRandomCallbacksParseOrAreRefused() {
        let pieces = [
            "https://app.example/cb", "?", "&", "=", "code", "state", "error", "access_denied", "accounts-server",
            "location", "%", "%2", "%ZZ", "+", "#", "://", "/", "code=a", "state=b", "\u{0}", "é", " ",
        ]
        for _ in 0..<3000 {
            let text = (0..<Int.random(in: 0...12)).map { _ in pieces.randomElement()! }.joined()
            do {
                let callback = try AuthorizationCallback(parsing: text)
                XCTAssertTrue(callback.code != nil || callback.error != nil)
            } catch {
                XCTAssertEqual(error.code, .invalidInput)
            }
        }
    }
}
