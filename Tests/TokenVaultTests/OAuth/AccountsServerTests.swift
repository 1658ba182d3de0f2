import Foundation
import XCTest

@testable import TokenVault

/// Which accounts servers a callback, an argument or a row may name: only the provider's trusted ones, exactly.
final class AccountsServerTests: XCTestCase {
    let zoho = OAuthProvider.zoho(
        "zoho_crm", dataCenter: .us, clientID: "1000.X", clientSecret: Secret("s"),
        accountsServerOverrides: [.eu: URL(string: "http://127.0.0.1:9002")!])

    func testKnownServersAndLocationsResolve() throws {
        XCTAssertNil(try zoho.resolveAccountsServer(nil, location: nil))
        XCTAssertEqual(
            try zoho.resolveAccountsServer("https://accounts.zoho.in", location: "in"), "https://accounts.zoho.in")
        XCTAssertEqual(
            try zoho.resolveAccountsServer("HTTPS://Accounts.Zoho.UK/", location: nil), "https://accounts.zoho.uk")
        XCTAssertEqual(try zoho.resolveAccountsServer(nil, location: "EU"), "http://127.0.0.1:9002")
        XCTAssertEqual(
            try zoho.resolveAccountsServer("https://accounts.zohocloud.ca", location: "ca"),
            "https://accounts.zohocloud.ca")
        let eu = try zoho.at(accountsServer: "http://127.0.0.1:9002")
        XCTAssertEqual(eu.tokenURL.absoluteString, "http://127.0.0.1:9002/oauth/v2/token")
        XCTAssertEqual(eu.revocationURL?.absoluteString, "http://127.0.0.1:9002/oauth/v2/token/revoke")
    }

    func testEverythingElseIsRefused() {
        let hostile: [(String?, String?)] = [
            ("https://accounts.zoho.eu", "eu"),  // overridden: the real EU host is no longer the EU server
            ("https://accounts.zoho.com.evil.example", nil), ("https://evil.example/accounts.zoho.com", nil),
            ("https://user@accounts.zoho.com", nil), ("https://accounts.zoho.com:444", nil),
            ("http://accounts.zoho.com", nil), ("https://accounts.zoho.com/oauth", nil),
            ("https://accounts.zoho.com?x=1", nil), ("https://accounts.zoho.com#x", nil),
            ("https://accounts.zoho.com.", nil), ("//accounts.zoho.com", nil), ("accounts.zoho.com", nil),
            ("https://accounts.zoho.in", "us"), (nil, "mars"), (nil, "../eu"),
            ("https://accounts%2ezoho.com", nil), ("https://xn--accounts-zoho.com", nil),
        ]
        for (server, location) in hostile {
            XCTAssertThrowsError(
                try zoho.resolveAccountsServer(server, location: location), "\(server ?? "-") \(location ?? "-")"
            ) { error in
                XCTAssertEqual((error as? VaultError)?.code, .accountsServerRefused)
            }
        }
        XCTAssertThrowsError(try zoho.at(accountsServer: "https://evil.example"))
        let single = OAuthProvider(
            name: "google", tokenURL: URL(string: "https://oauth2.googleapis.com/token")!, clientID: "x",
            clientSecret: Secret("s"))
        XCTAssertThrowsError(try single.resolveAccountsServer("https://oauth2.googleapis.com", location: nil))
        XCTAssertNil(try single.resolveAccountsServer(nil, location: "us"))
    }

    func testCallbacksParseFromURLsPathsAndQueries() throws {
        let full = try AuthorizationCallback(
            parsing:
                "https://app.example/cb?code=1000.c%2Bd&state=abc&location=eu&accounts-server=https%3A%2F%2Faccounts.zoho.eu\n"
        )
        XCTAssertEqual(full.code?.reveal(), "1000.c+d")
        XCTAssertEqual(full.state?.reveal(), "abc")
        XCTAssertEqual(full.location, "eu")
        XCTAssertEqual(full.accountsServer, "https://accounts.zoho.eu")
        XCTAssertEqual(full.redirectURI, "https://app.example/cb")
        XCTAssertFalse("\(full)".contains("1000.c"))
        let query = try AuthorizationCallback(parsing: "?error=access_denied&state=abc")
        XCTAssertEqual(query.error, "access_denied")
        XCTAssertNil(query.redirectURI)
        XCTAssertNotNil(try AuthorizationCallback(parsing: "/cb?code=x").code)
        let bare = try AuthorizationCallback(parsing: "code=x&state=s&accounts-server=https://accounts.zoho.eu")
        XCTAssertEqual(bare.accountsServer, "https://accounts.zoho.eu")
        XCTAssertNil(bare.redirectURI)
        for bad in ["", "state=abc", "https://app.example/cb", "code=a&code=b", String(repeating: "a", count: 20_000)] {
            XCTAssertThrowsError(try AuthorizationCallback(parsing: bad), bad.prefix(30).description)
        }
    }
}
