import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete the stored tokens of one client and provider, optionally revoking them first.",
        discussion: """
            With --revoke the refresh token is first revoked at the provider (RFC 7009; Zoho's \
            /oauth/v2/token/revoke, which also revokes its access tokens), at the account's own accounts server, \
            and the row is deleted only if that worked (a token the provider no longer knows counts as revoked). \
            If the provider cannot be reached or fails, the row is kept and the command fails (exit 69); add \
            --force to delete it anyway, knowing that the token may still be live at the provider.

            Examples:
              token-vault delete --client acme --provider zoho_crm
              token-vault delete --client acme --provider zoho_crm --revoke
            """)

    @OptionGroup var row: RowOptions

    @Flag(help: "Revoke the refresh token at the provider before deleting the row.")
    var revoke = false

    @Flag(help: "With --revoke: delete the row even when revocation fails.")
    var force = false

    func validate() throws {
        if force && !revoke { throw ValidationError("--force only applies with --revoke.") }
    }

    func run() async throws {
        let names = "client '\(CLI.printable(row.client))', provider '\(CLI.printable(row.provider))'"
        let deleted = try await CLI.withVault(needsKeys: revoke) { vault in
            guard revoke else { return try await vault.delete(client: row.client, provider: row.provider) }
            do {
                return try await vault.delete(client: row.client, provider: row.provider, revoke: true)
            } catch let error as VaultError where force && Self.forceable.contains(error.code) {
                let deleted = try await vault.delete(client: row.client, provider: row.provider)
                FileHandle.standardError.write(
                    Data(
                        ("token-vault: warning: \(CLI.printable(error.message)) Deleted anyway (--force): the refresh "
                            + "token may still be live at the provider; revoke it there (for Zoho: the user's "
                            + "Connected Apps).\n").utf8))
                return deleted
            }
        }
        guard deleted else {
            throw CLI.fail(VaultError(.notFound, "no tokens are stored for \(names); nothing deleted."))
        }
        print("\(revoke ? "revoked and deleted" : "deleted") tokens for \(names)")
    }

    /// The failures --force deletes through: those of the revocation, not of the database.
    static let forceable: Set<VaultError.Code> = [
        .revocationFailed, .providerConfiguration, .unknownProvider, .accountsServerRefused, .unknownKey,
        .authenticationFailed, .malformedCiphertext, .providerError, .timedOut, .rateLimited,
    ]
}
