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

    /// `expires_at` in an import line is parsed by hand: Foundation's ISO8601DateFormatter (ICU) crashed the
    /// process with SIGFPE on a fraction of fifty digits (found by the import-line fuzz target).
    func testExpiresAtFormsAndTheFuzzersCrash() {
        let base = Date(timeIntervalSince1970: 1_769_860_800)  // 2026-01-31T12:00:00Z
        let accepted: [(String, Date)] = [
            ("2026-01-31T12:00:00Z", base), ("2026-01-31t12:00:00z", base),
            ("2026-01-31T12:00:00.5Z", base.addingTimeInterval(0.5)),
            ("2026-01-31 12:00:00.123456+00", base.addingTimeInterval(0.123456)),
            ("2026-01-31T13:30:00+01:30", base), ("2026-01-31T07:00:00-0500", base),
            ("2024-02-29T00:00:00Z", Date(timeIntervalSince1970: 1_709_164_800)),
            ("1970-01-01T00:00:00Z", Date(timeIntervalSince1970: 0)),
            ("1969-12-31T23:59:59Z", Date(timeIntervalSince1970: -1)),
        ]
        for (text, date) in accepted {
            let parsed = ImportRecord.parseDate(text)
            XCTAssertNotNil(parsed, text)
            XCTAssertEqual(parsed?.timeIntervalSince1970 ?? 0, date.timeIntervalSince1970, accuracy: 1e-6, text)
        }
        let refused = [
            "2026-01-31 12:00:00." + String(repeating: "6", count: 50) + "+00",  // the crash
            "2026-01-31T12:00:00.1234567890Z", "2026-01-31T12:00:00", "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z", "2026-01-31T24:00:00Z", "2026-01-31T12:00:00.Z", "2026-01-31T12:00:00+24:00",
            "2026-01-31T12:00:00Zjunk", "", "now", "٢٠٢٦-01-31T12:00:00Z",
        ]
        for text in refused { XCTAssertNil(ImportRecord.parseDate(text), text) }
        let line = Array(
            (#"{"client_id":"globex","provider":"zoho_crm","access_token":"a","refresh_token":"b","expires_at":"#
                + #""2026-01-31 12:00:00."# + String(repeating: "6", count: 50) + #"+00"}"#).utf8)
        XCTAssertThrowsError(try ImportRecord.parse(line: line)) { error in
            XCTAssertEqual((error as? VaultError)?.code, .invalidInput, "\(error)")
        }
    }
}
