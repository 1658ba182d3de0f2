import Foundation
import TokenVault
import TokenVaultTesting
import XCTest

/// `token-vault audit`, `audit verify`, `audit prune` and `migrate --grant-to`, through the built binary.
final class AuditCLITests: LocalZohoCLITestCase {
    override func setUp() async throws {
        try await super.setUp()
        XCTAssertEqual(try cli.run(["migrate"]).status, 0)
    }

    func put(_ client: String) throws {
        let put = try cli.run(
            ["put", "--client", client, "--provider", "zoho_crm"],
            stdin: #"{"access_token":"1000.at-\#(client)","refresh_token":"1000.rt-\#(client)","expires_in":3600}"#)
        XCTAssertEqual(put.status, 0, put.stderr)
    }

    func testAuditListsVerifiesAndNamesABrokenLink() async throws {
        try put("acme")
        try put("acme")
        try put("other")
        XCTAssertEqual(try cli.run(["delete", "--client", "other", "--provider", "zoho_crm"]).status, 0)
        let list = try cli.run(["audit", "--client", "acme"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let lines = list.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, list.stdout)
        XCTAssertTrue(lines.allSatisfy { $0.contains("  stored  client 'acme', provider 'zoho_crm'  ok  key ") })
        XCTAssertFalse(list.stdout.contains("1000."), "no token in the trail")
        var withActor = cli!
        withActor.environment["TOKEN_VAULT_AUDIT_ACTOR"] = "ops-alice"
        XCTAssertEqual(try withActor.run(["delete", "--client", "acme", "--provider", "zoho_crm"]).status, 0)
        let json = try cli.run(["audit", "--json", "--since", "1d"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let objects = try json.stdout.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        XCTAssertEqual(objects.map { $0["kind"] as? String }, ["stored", "stored", "stored", "deleted", "deleted"])
        XCTAssertEqual(objects.last?["actor"] as? String, "ops-alice")
        XCTAssertEqual(objects.last?["application"] as? String, "token-vault")
        XCTAssertEqual(try cli.run(["audit", "--since", "2999-01-01"]).stdout, "")

        let verify = try cli.run(["audit", "verify"])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        XCTAssertEqual(verify.stdout, "2 chains, 5 events checked, 0 broken\n")

        let chain = AuditEvent.chain(client: "acme", provider: "zoho_crm")
        _ = try await sql(
            "UPDATE token_vault_audit_events SET outcome = 'nothing' WHERE chain = '\(chain)' AND seq = 2")
        let broken = try cli.run(["audit", "verify"])
        XCTAssertEqual(broken.status, 1)
        XCTAssertTrue(
            broken.stdout.hasPrefix("BROKEN chain \(chain), event 2: its MAC does not verify"), broken.stdout)

        let otherKey = try cli.run(
            ["audit", "verify"], extraEnvironment: ["TOKEN_VAULT_KEY": VaultKey.generate().exportBase64()])
        XCTAssertEqual(otherKey.status, 1)
        XCTAssertTrue(otherKey.stdout.contains("events are authenticated under a key that is not configured"))
    }

    func testPruneKeepsTheRestVerifiableAndRefusesABrokenChain() async throws {
        for client in ["a", "b", "c"] { try put(client) }
        // The events' times are authenticated: rather than backdate them, prune at a time between the puts.
        try await Task.sleep(for: .seconds(1.1))
        let cutoff = ISO8601DateFormatter().string(from: Date())
        try await Task.sleep(for: .seconds(1.1))
        try put("a")
        _ = try await sql(
            "UPDATE token_vault_audit_events SET outcome = 'failed' WHERE chain = '\(AuditEvent.chain(client: "c", provider: "zoho_crm"))'"
        )
        let prune = try cli.run(["audit", "prune", "--before", cutoff])
        XCTAssertEqual(prune.status, 1, "a broken chain is kept: " + prune.stdout + prune.stderr)
        XCTAssertTrue(prune.stdout.contains("KEPT chain row:1:c/zoho_crm, event 1"), prune.stdout)
        XCTAssertTrue(prune.stdout.hasSuffix("from 2 chains\n"), prune.stdout)
        XCTAssertTrue(prune.stdout.contains("removed 2 events"), prune.stdout)
        let remaining = try await sql("SELECT chain, seq FROM token_vault_audit_events ORDER BY chain, seq")
        XCTAssertEqual(
            remaining.map { "\($0[0]!)#\($0[1]!)" }, ["row:1:a/zoho_crm#2", "row:1:c/zoho_crm#1", "vault#1"])
        let verify = try cli.run(["audit", "verify"])
        XCTAssertEqual(verify.status, 1)
        XCTAssertEqual(verify.stdout.components(separatedBy: "BROKEN").count - 1, 1, "only c: " + verify.stdout)
        // Deleting an anchor is noticed too.
        _ = try await sql("DELETE FROM token_vault_audit_anchors WHERE chain = 'row:1:a/zoho_crm'")
        let again = try cli.run(["audit", "verify"])
        XCTAssertTrue(again.stdout.contains("BROKEN chain row:1:a/zoho_crm, event 1: event 1 is missing"), again.stdout)
    }

    /// Under `migrate --grant-to`, the application's role appends events but cannot change or delete them.
    func testTheApplicationRoleCannotUpdateOrDeleteEvents() async throws {
        let role = "vault_app_\(UInt32.random(in: 0...UInt32.max))"
        _ = try await sql("CREATE ROLE \(role) LOGIN")
        let serverDatabase = database.url
        defer {
            Task {
                try? await AdminSQL.execute("DROP OWNED BY \(role)", url: serverDatabase)
                try? await AdminSQL.execute("DROP ROLE \(role)", url: serverDatabase)
            }
        }
        let grant = try cli.run(["migrate", "--grant-to", role])
        XCTAssertEqual(grant.status, 0, grant.stderr)
        XCTAssertTrue(
            grant.stdout.contains("GRANT SELECT, INSERT ON token_vault_audit_events TO \(role)"), grant.stdout)
        var app = cli!
        app.environment["DATABASE_URL"] = Self.url(database.url, user: role)
        try put("owner-wrote")
        let put = try app.run(
            ["put", "--client", "acme", "--provider", "zoho_crm"],
            stdin: #"{"access_token":"1000.a","refresh_token":"1000.r","expires_in":3600}"#)
        XCTAssertEqual(put.status, 0, put.stderr)
        XCTAssertEqual(try app.run(["delete", "--client", "acme", "--provider", "zoho_crm"]).status, 0)
        XCTAssertEqual(try app.run(["audit", "verify"]).status, 0)
        let prune = try app.run(["audit", "prune", "--before", "0d"])
        XCTAssertEqual(prune.status, 70, "the application cannot delete events: " + prune.stderr)
        XCTAssertTrue(prune.stderr.contains("permission denied"), prune.stderr)
        for statement in [
            "UPDATE token_vault_audit_events SET outcome = 'x'", "DELETE FROM token_vault_audit_events",
            "TRUNCATE token_vault_audit_events", "DELETE FROM token_vault_audit_anchors",
        ] {
            do {
                _ = try await sql(statement, url: Self.url(database.url, user: role))
                XCTFail("the application role could run: \(statement)")
            } catch {
                XCTAssertTrue("\(error)".contains("permission denied"), "\(error)")
            }
        }
    }

    /// The application role that `--grant-to` sets up must be able to connect accounts (migration 4's table).
    func testTheApplicationRoleCanBeginAnAuthorization() async throws {
        let role = "vault_app_\(UInt32.random(in: 0...UInt32.max))"
        _ = try await sql("CREATE ROLE \(role) LOGIN")
        let serverDatabase = database.url
        defer {
            Task {
                try? await AdminSQL.execute("DROP OWNED BY \(role)", url: serverDatabase)
                try? await AdminSQL.execute("DROP ROLE \(role)", url: serverDatabase)
            }
        }
        XCTAssertEqual(try cli.run(["migrate", "--grant-to", role]).status, 0)
        var app = cli!
        app.environment["DATABASE_URL"] = Self.url(database.url, user: role)
        let begun = try app.run([
            "authorize", "--client", "acme", "--provider", "zoho_crm", "--redirect-uri",
            "https://app.example/oauth/callback",
        ])
        XCTAssertEqual(begun.status, 0, begun.stderr)
    }

    static func url(_ url: String, user: String) -> String {
        if url.hasPrefix("postgres"), var components = URLComponents(string: url) {
            components.user = user
            return components.string!
        }
        return "\(url) user=\(user)"
    }

    /// Runs SQL as the test server's superuser (or as `url`).
    func sql(_ sql: String, url: String? = nil) async throws -> [[String?]] {
        try await AdminSQL.query(sql, url: url ?? database.url)
    }
}
