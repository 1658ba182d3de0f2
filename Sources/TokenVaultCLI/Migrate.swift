import ArgumentParser
import TokenVault
import TokenVaultCommandSupport

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or upgrade the database schema (safe to run again, and from several hosts at once).",
        discussion: """
            Run it as the role that owns the tables. With --grant-to, it then grants the application's role \
            what it needs and no more: it may append audit events but not change or delete them \
            (docs/audit.md, "Grants").

            Examples:
              DATABASE_URL=postgresql://vault_admin@localhost/vault token-vault migrate
              DATABASE_URL=postgresql://vault_admin@localhost/vault token-vault migrate --grant-to vault_app
            """)

    @Option(help: "The application's database role, to be granted the rights of docs/audit.md's role layout.")
    var grantTo: String?

    func run() async throws {
        let (applied, grants) = try await CLI.withVault(needsKeys: false) { vault in
            let applied = try await vault.migrate()
            guard let grantTo else { return (applied, nil as String?) }
            return (applied, try await vault.grantAccess(toApplicationRole: grantTo))
        }
        if applied.isEmpty {
            print("schema is up to date")
        } else {
            print("applied migrations \(applied.map(String.init).joined(separator: ", "))")
        }
        if let grants, let grantTo {
            print("granted \(CLI.printable(grantTo)):\n\(grants)")
        }
    }
}
