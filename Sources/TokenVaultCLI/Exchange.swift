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

            For an account in another data centre than ZOHO_DATA_CENTER, name it with --data-center (us, eu, in, \
            au, jp, ca, sa, uk, cn) or --accounts-server (e.g. https://accounts.zoho.eu): the code is exchanged \
            there, and the account's refreshes and revocation go there too. Only Zoho's own accounts servers (or \
            their ZOHO_ACCOUNTS_URL* overrides) are accepted. For authorizations with a redirect URI, use \
            `token-vault authorize` and `token-vault callback`.

            Example:
              token-vault exchange --client acme --provider zoho_crm < grant-token.txt
              token-vault exchange --client acme-eu --provider zoho_crm --data-center eu < grant-token.txt
            """)

    @OptionGroup var row: RowOptions

    @Option(name: .customLong("data-center"), help: "The account's data centre (us, eu, in, au, jp, ca, sa, uk, cn).")
    var dataCenter: String?

    @Option(name: .customLong("accounts-server"), help: "The account's accounts server, e.g. https://accounts.zoho.eu.")
    var accountsServer: String?

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
            try await vault.exchange(
                code: Secret(code), client: row.client, provider: row.provider, accountsServer: accountsServer,
                location: dataCenter)
        }
        let domain = token.apiDomain.map { ", api_domain \(CLI.printable($0))" } ?? ""
        print(
            "stored tokens for client '\(CLI.printable(row.client))', provider '\(CLI.printable(row.provider))'\(domain)"
        )
    }
}
