import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// `list` with the refresh state, and `list --needs-reauth`, through the built binary.
final class CLIListTests: LocalZohoCLITestCase {
    override func setUp() async throws {
        try await super.setUp()
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)
    }

    func put(_ client: String, refresh: String, expiresIn: Int) throws {
        let put = try cli.run(
            ["put", "--client", client, "--provider", "zoho_crm"],
            stdin: #"{"access_token":"1000.at-\#(refresh)","refresh_token":"\#(refresh)","expires_in":\#(expiresIn)}"#)
        XCTAssertEqual(put.status, 0, put.stderr)
    }

    /// A refresh the provider refuses (the refresh token was never issued) marks the row; `--needs-reauth` lists
    /// it, with its error and when it failed, and exits 1; the healthy row is left out.
    func testARefusedRefreshIsListedByNeedsReauth() throws {
        try put("healthy", refresh: "rt-healthy", expiresIn: 3600)
        try put("revoked\u{202E}", refresh: "rt-revoked", expiresIn: 10)
        let token = try cli.run(["token", "--client", "revoked\u{202E}", "--provider", "zoho_crm"])
        XCTAssertEqual(token.status, 77, token.stderr)

        let table = try cli.run(["list", "--needs-reauth"])
        XCTAssertEqual(table.status, 1, "rows need re-authorization: exit 1 for cron\n" + table.stderr)
        XCTAssertTrue(table.stderr.isEmpty, table.stderr)
        let lines = table.stdout.split(separator: "\n").map(String.init)
        guard lines.count == 3 else { return XCTFail("header, the row, \"1 row\": " + table.stdout) }
        XCTAssertTrue(lines[0].hasPrefix("CLIENT"), lines[0])
        XCTAssertTrue(lines[0].hasSuffix("REAUTH  REFRESHED  FAILED                LAST ERROR"), lines[0])
        XCTAssertTrue(lines[1].hasPrefix(#"revoked\u{202E}"#), "ids are escaped as everywhere: " + lines[1])
        XCTAssertFalse(table.stdout.unicodeScalars.contains("\u{202E}"))
        XCTAssertTrue(lines[1].contains("  yes  "), lines[1])
        XCTAssertTrue(lines[1].hasSuffix("the provider refused the refresh token (invalid_code)"), lines[1])
        XCTAssertEqual(lines[2], "1 row")
        XCTAssertFalse(table.stdout.contains("healthy"))
        for secret in ["1000.at-", "rt-revoked", "rt-healthy"] { XCTAssertFalse(table.stdout.contains(secret)) }

        let json = try cli.run(["list", "--needs-reauth", "--json"])
        XCTAssertEqual(json.status, 1, json.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows[0]["client_id"] as? String, "revoked\u{202E}")
        XCTAssertEqual(rows[0]["needs_reauthorization"] as? Bool, true)
        XCTAssertEqual(
            rows[0]["last_refresh_error"] as? String, "the provider refused the refresh token (invalid_code)")
        let failedAt = try XCTUnwrap(rows[0]["last_refresh_failed_at"] as? String)
        let failed = try XCTUnwrap(ISO8601DateFormatter().date(from: failedAt), failedAt)
        XCTAssertLessThan(abs(failed.timeIntervalSinceNow), 120)
        XCTAssertNil(rows[0]["last_refreshed_at"], "never refreshed")

        // Plain `list` shows every row and its state, and exits 0.
        let all = try cli.run(["list"])
        XCTAssertEqual(all.status, 0, all.stderr)
        let healthy = try XCTUnwrap(all.stdout.split(separator: "\n").first { $0.hasPrefix("healthy") })
        XCTAssertTrue(healthy.contains("  no  "), String(healthy))
        XCTAssertTrue(healthy.hasSuffix("  -"), String(healthy))
        XCTAssertTrue(all.stdout.contains("2 rows"), all.stdout)
        let allJSON = try cli.run(["list", "--json"])
        let allRows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(allJSON.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(allRows.map { $0["needs_reauthorization"] as? Bool }, [false, true])

        // Reconnected: nothing needs re-authorization any more, exit 0.
        try put("revoked\u{202E}", refresh: "rt-new", expiresIn: 3600)
        let none = try cli.run(["list", "--needs-reauth"])
        XCTAssertEqual(none.status, 0, none.stderr)
        XCTAssertTrue(none.stdout.hasSuffix("0 rows\n"), none.stdout)
        let noneJSON = try cli.run(["list", "--needs-reauth", "--json"])
        XCTAssertEqual(noneJSON.status, 0, noneJSON.stderr)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(noneJSON.stdout.utf8)) as? [Any])?.count, 0)
    }

    /// More marked rows than the CLI's page of 1,000: the filter holds on every page and the pages join into one
    /// JSON array. (Marked with SQL: 1,500 refused refreshes would take the provider's rate limit.)
    func testNeedsReauthAcrossPages() async throws {
        let lines = (0..<2100).map { index in
            #"{"client_id":"c-\#(String(format: "%04d", index))","provider":"zoho_crm","#
                + #""access_token":"1000.a-\#(index)","refresh_token":"1000.r-\#(index)","expires_in":3600}"#
        }
        let imported = try cli.run(["import"], stdin: lines.joined(separator: "\n") + "\n")
        XCTAssertEqual(imported.status, 0, imported.stderr)
        // Every row but each fourth: 1,575 rows, in two pages of the filtered query.
        try await AdminSQL.execute(
            """
            UPDATE oauth_tokens SET needs_reauthorization = true, last_refresh_failed_at = now(),
                last_refresh_error = 'the provider refused the refresh token (invalid_code)'
            WHERE substr(client_id, 3)::integer % 4 <> 0
            """, url: database.url)
        let json = try cli.run(["list", "--needs-reauth", "--json"])
        XCTAssertEqual(json.status, 1, json.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.count, 1575)
        let ids = rows.compactMap { $0["client_id"] as? String }
        XCTAssertEqual(ids, ids.sorted())
        XCTAssertEqual(Set(ids).count, 1575)
        XCTAssertTrue(rows.allSatisfy { $0["needs_reauthorization"] as? Bool == true })
        XCTAssertFalse(ids.contains("c-0000") || ids.contains("c-1000") || ids.contains("c-2096"))

        let table = try cli.run(["list", "--needs-reauth"])
        XCTAssertEqual(table.status, 1, table.stderr)
        XCTAssertTrue(table.stdout.hasSuffix("1575 rows\n"), String(table.stdout.suffix(100)))
        XCTAssertFalse(table.stdout.contains("  no  "))
    }
}
