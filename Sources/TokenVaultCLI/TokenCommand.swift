import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a valid access token on stdout, refreshing it at the provider when needed.",
        discussion: """
            The stored token is printed while it is valid for more than the safety margin (5 minutes, \
            TOKEN_VAULT_REFRESH_MARGIN). Otherwise it is refreshed once, however many processes ask at the same \
            moment, with the app credentials from ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET (zoho_crm, zoho_calendar; \
            data centre from ZOHO_DATA_CENTER, or ZOHO_ACCOUNTS_URL).

            Examples:
              token-vault token --client acme --provider zoho_crm \\
                | sed 's/^/Authorization: Zoho-oauthtoken /' \\
                | curl -H @- https://www.zohoapis.eu/crm/v6/Leads
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
        let tokens = try await CLI.withVault { vault in
            try await vault.accessToken(client: row.client, provider: row.provider)
        }
        let access = tokens.value
        if json {
            try CLI.printJSON(
                Output(
                    clientId: row.client, provider: row.provider, accessToken: access.reveal(),
                    expiresAt: tokens.expiresAt, expiresIn: tokens.expiresAt.map { Int($0.timeIntervalSinceNow) },
                    scopes: tokens.scopes, metadata: tokens.metadata))
        } else {
            let value = access.reveal()
            // Refused since put and import check tokens, but a row stored before could hold one: printed raw, a
            // line break would add a header to the request a script builds from it.
            guard !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
                throw CLI.fail(
                    VaultError(
                        .invalidInput,
                        "the stored access token of client '\(row.client)', provider '\(row.provider)' holds a control "
                            + "character (such as a line break), so it is not printed raw; store fresh tokens "
                            + "(`token-vault put`), or read it with --json, which escapes it."))
            }
            print(value)
        }
    }
}
