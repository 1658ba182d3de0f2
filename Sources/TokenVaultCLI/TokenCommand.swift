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
        let clientId: String
        let provider: String
        let accessToken: String
        let expiresAt: Date?
        let expiresIn: Int?
        let scopes: String?
        let metadata: [String: JSONValue]

        enum CodingKeys: String, CodingKey {
            case clientId = "client_id"
            case provider
            case accessToken = "access_token"
            case expiresAt = "expires_at"
            case expiresIn = "expires_in"
            case scopes
            case metadata
        }
    }

    func run() async throws {
        let tokens = try await Runner.withVault { vault in
            try await vault.storedAccessToken(client: row.client, provider: row.provider)
        }
        guard let access = tokens.accessToken else { throw Runner.fail(VaultError(.tokenExpired, "no access token")) }
        if json {
            try Runner.printJSON(
                Output(
                    clientId: tokens.clientID, provider: tokens.provider, accessToken: access.reveal(),
                    expiresAt: tokens.expiresAt, expiresIn: tokens.expiresAt.map { Int($0.timeIntervalSinceNow) },
                    scopes: tokens.scopes, metadata: tokens.metadata))
        } else {
            print(access.reveal())
        }
    }
}
