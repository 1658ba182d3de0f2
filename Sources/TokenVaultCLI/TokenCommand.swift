import ArgumentParser
import Foundation
import TokenVault

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print the stored access token on stdout while it is valid.",
        discussion: """
            An access token that expires within the safety margin (5 minutes) is an error (exit 75).

            Examples:
              curl -H "Authorization: Zoho-oauthtoken $(token-vault token --client acme --provider zoho_crm)" …
              token-vault token --client acme --provider zoho_crm --json
            """)

    @OptionGroup var row: RowOptions

    @Flag(help: "Print the token with its expiry, scopes and metadata as JSON.")
    var json = false

    struct Output: Encodable {
        let client_id: String
        let provider: String
        let access_token: String
        let expires_at: Date?
        let expires_in: Int?
        let scopes: String?
        let metadata: [String: JSONValue]
    }

    func run() async throws {
        let tokens = try await Runner.withVault { vault in
            try await vault.storedAccessToken(client: row.client, provider: row.provider)
        }
        guard let access = tokens.accessToken else { throw Runner.fail(VaultError(.tokenExpired, "no access token")) }
        if json {
            try Runner.printJSON(
                Output(
                    client_id: tokens.clientID, provider: tokens.provider, access_token: access.reveal(),
                    expires_at: tokens.expiresAt, expires_in: tokens.expiresAt.map { Int($0.timeIntervalSinceNow) },
                    scopes: tokens.scopes, metadata: tokens.metadata))
        } else {
            print(access.reveal())
        }
    }
}
