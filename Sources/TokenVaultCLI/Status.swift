import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the refresh state of one row, without secrets.",
        discussion: """
            Shows whether the access token is valid, whether the user must authorize again (the provider refused \
            the refresh token), and the last refresh error.

            Examples:
              token-vault status --client acme --provider zoho_crm
              token-vault status --client acme --provider zoho_crm --json
            """)

    @OptionGroup var row: RowOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let status = try await CLI.withVault(needsKeys: false) { vault in
            try await vault.status(client: row.client, provider: row.provider)
        }
        if json {
            try CLI.printJSON(status)
            return
        }
        let lines: [(String, String)] = [
            ("client", status.clientID), ("provider", status.provider), ("key id", status.keyID.rawValue),
            ("expires", CLI.iso8601(status.expiresAt)),
            (
                "access token",
                status.accessTokenValid ? "valid" : "expired or within the refresh margin (refreshed on next use)"
            ),
            ("needs re-authorization", status.needsReauthorization ? "YES: store new tokens (exchange or put)" : "no"),
            ("last refresh", CLI.iso8601(status.lastRefreshedAt)),
            ("last refresh error", status.lastRefreshError ?? "-"),
            ("updated", CLI.iso8601(status.updatedAt)), ("version", String(status.version)),
            ("accounts server", status.accountsServer ?? "- (the provider's default)"),
        ]
        for (name, value) in lines {
            print("\(name.padding(toLength: 23, withPad: " ", startingAt: 0)) \(CLI.printable(value))")
        }
    }
}
