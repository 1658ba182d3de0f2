import Foundation
import XCTest

@testable import TokenVault

/// Numbers from outside never crash the process: an expiry that cannot be stored (or would never be refreshed) is
/// refused with a message when a person gave it, and bounded when a provider did, so that its tokens are kept.
final class ExpiryRangeTests: XCTestCase {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func response(_ expiresIn: String) -> [UInt8] {
        Array(#"{"access_token":"1000.at","refresh_token":"1000.rt","expires_in":\#(expiresIn)}"#.utf8)
    }

    func testAnExpiryTooFarAwayIsRefusedForAPersonsInput() {
        for value in ["1e300", "1e13", "1e11", "315576001"] {
            XCTAssertThrowsError(try TokenResponse.parse(response(value), receivedAt: now), value) { error in
                XCTAssertEqual((error as? VaultError)?.code, .invalidInput)
                XCTAssertTrue("\(error)".contains("more than ten years"), "\(error)")
            }
        }
        XCTAssertEqual(
            try TokenResponse.parse(response("3600"), receivedAt: now).expiresAt, now.addingTimeInterval(3600))
    }

    func testAProvidersOutOfRangeExpiryKeepsTheTokensForADay() throws {
        let object = try JSONDecoder().decode([String: JSONValue].self, from: Data(response("1e300")))
        let tokens = try TokenResponse.parse(object: object, receivedAt: now, strict: false)
        XCTAssertEqual(tokens.refreshToken, Secret("1000.rt"))
        XCTAssertEqual(tokens.expiresAt, now.addingTimeInterval(86_400))
    }

    func testAnImportedExpiryOutOfRangeIsRefused() {
        for expiresAt in ["1e300", "-1e300", "-1", "\"9999-01-01T00:00:00Z\""] {
            let line = #"{"client_id":"c","provider":"p","refresh_token":"1000.rt","expires_at":\#(expiresAt)}"#
            XCTAssertThrowsError(try ImportRecord.parse(line: Array(line.utf8), receivedAt: now), expiresAt) { error in
                XCTAssertEqual((error as? VaultError)?.code, .invalidInput, "\(error)")
            }
        }
    }

    /// A library caller can build any TokenSet: sealing it refuses the expiry rather than trapping when the row's
    /// microseconds are computed.
    func testSealingATokenSetWithAnAbsurdExpiryThrows() throws {
        let sealer = Sealer(keyring: try Keyring(current: .generate()))
        for seconds in [1e300, -1e300, Double.infinity, .nan] {
            let tokens = TokenSet(
                accessToken: Secret("at"), refreshToken: Secret("rt"), expiresAt: Date(timeIntervalSince1970: seconds))
            XCTAssertThrowsError(try sealer.sealRow(tokens, client: "c", provider: "p"), "\(seconds)") { error in
                XCTAssertEqual((error as? VaultError)?.code, .invalidInput)
            }
        }
    }
}
