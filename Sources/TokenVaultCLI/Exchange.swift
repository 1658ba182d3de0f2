import ArgumentParser
import TokenVault
import TokenVaultCommandSupport

struct Exchange: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exchange an authorization code (read from stdin) for tokens and store them.",
        discussion: """
            The usual way to onboard a Zoho account: in the Zoho API console, Self Client, generate a grant \
            token with the scopes you need (it expires within minutes), then pipe it in. The app credentials come \
            from ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET, the data centre from ZOHO_DATA_CENTER.

            Example:
              token-vault exchange --client acme --provider zoho_crm < grant-token.txt
            """)

    @OptionGroup var row: RowOptions

    func run() async throws {
        let input: [UInt8]
        do {
            input = try CLI.readStandardInput()
        } catch {
            throw CLI.fail(error)
        }
        let code = String(decoding: input, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !code.isEmpty else {
            throw CLI.fail(
                VaultError(.invalidInput, "no authorization code on stdin; pipe the grant token in."))
        }
        let hints: [VaultError.Code: String] = [
            .needsReauthorization:
                "Generate a new grant token (Zoho API console, Self Client) and exchange it at once."
        ]
        let token = try await CLI.withVault(hints: hints) { vault in
            try await vault.exchange(code: Secret(code), client: row.client, provider: row.provider)
        }
        let domain = token.apiDomain.map { ", api_domain \(CLI.printable($0))" } ?? ""
        print(
            "stored tokens for client '\(CLI.printable(row.client))', provider '\(CLI.printable(row.provider))'\(domain)"
        )
    }
}
