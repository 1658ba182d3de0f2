import ArgumentParser
import TokenVault
import TokenVaultCommandSupport

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete the stored tokens of one client and provider.",
        discussion: "Example:\n  token-vault delete --client acme --provider zoho_crm")

    @OptionGroup var row: RowOptions

    func run() async throws {
        let deleted = try await CLI.withVault(needsKeys: false) { vault in
            try await vault.delete(client: row.client, provider: row.provider)
        }
        guard deleted else {
            throw CLI.fail(
                VaultError(
                    .notFound,
                    "no tokens are stored for client '\(CLI.printable(row.client))', provider '\(CLI.printable(row.provider))'; nothing deleted."
                ))
        }
        print("deleted tokens for client '\(CLI.printable(row.client))', provider '\(CLI.printable(row.provider))'")
    }
}
