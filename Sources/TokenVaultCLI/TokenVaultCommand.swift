import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

@main
struct TokenVaultCommand: AsyncParsableCommand {
    /// Hardens the process before anything reads a key or a token, then runs the command.
    static func main() async {
        CLI.hardenProcess()
        await main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "token-vault",
        abstract: "Keep OAuth tokens sealed (libsodium secretbox) in PostgreSQL.",
        discussion: """
            Configuration comes from the environment, never from arguments:
              TOKEN_VAULT_KEY, TOKEN_VAULT_KEY_FILE, TOKEN_VAULT_KEY_COMMAND
                  the current key (base64 of 32 bytes), a file that holds it, or a
                  program (no shell) that prints it, e.g. a KMS decrypt; set one
              TOKEN_VAULT_PREVIOUS_KEYS, TOKEN_VAULT_PREVIOUS_KEYS_FILE,
              TOKEN_VAULT_PREVIOUS_KEYS_COMMAND
                  older keys, used only to open (comma-separated, or one per line)
              TOKEN_VAULT_KEY_COMMAND_TIMEOUT
                  seconds a key command may take (30)
              DATABASE_URL
                  a postgresql:// URL or libpq conninfo (or the PG* variables)
              TOKEN_VAULT_POOL_SIZE
                  database connections per process (4)
              TOKEN_VAULT_POOL_TIMEOUT
                  seconds to wait for a free connection (60)
              TOKEN_VAULT_STATEMENT_TIMEOUT
                  seconds to wait for the database to answer a statement (30)
              TOKEN_VAULT_REFRESH_MARGIN
                  seconds before expiry that count as expired (300)
              ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET (or ZOHO_CLIENT_SECRET_FILE)
                  the Zoho app's credentials (zoho_crm, zoho_calendar)
              ZOHO_DATA_CENTER, ZOHO_ACCOUNTS_URL
                  us (default), eu, in, au, jp, ca, sa, uk, cn; or the accounts server
                  (the default for accounts that name none of their own)
              ZOHO_ACCOUNTS_URL_EU, ZOHO_ACCOUNTS_URL_US, …
                  replace one data centre's accounts server (a test endpoint)
              ZOHO_REFRESH_TOKEN
                  used once when no row exists; the result is stored
              TOKEN_VAULT_PROVIDERS_FILE
                  a JSON file of other OAuth providers (Google, Microsoft, …;
                  docs/connecting.md)
              TOKEN_VAULT_AUDIT, TOKEN_VAULT_AUDIT_READS
                  audit changes (on) and reads (off) in the database
              TOKEN_VAULT_AUDIT_ACTOR
                  who acts, recorded with each audit event
              TOKEN_VAULT_LOG_LEVEL
                  trace, debug, info, notice, warning, error or critical
                  (default: critical, i.e. only the error line)

            Exit codes: 0 ok; 1 verify or rotate-key found rows that do not open; 64 bad arguments; 65 bad \
            input data or a row that fails authentication; 66 no tokens stored; 69 database or provider \
            unreachable; 70 database error; 75 temporary (rate limited, timed out, rows left to rotate); \
            77 the user must authorize again; 78 configuration (keys, a failing key command, DATABASE_URL, schema, \
            providers); \
            130 interrupted. Details: docs/cli.md.

            Quick start:
              (umask 077; token-vault keygen > token-vault.key)   # into the secret manager
              export TOKEN_VAULT_KEY_FILE=/run/secrets/token-vault.key   # mounted from it
              export DATABASE_URL=postgresql://vault@db.internal/vault?sslmode=verify-full
              token-vault migrate
              echo '{"access_token":"…","refresh_token":"…","expires_in":3600}' | \\
                  token-vault put --client acme --provider zoho_crm
              token-vault token --client acme --provider zoho_crm
            """,
        subcommands: [
            Keygen.self, Migrate.self, Put.self, Exchange.self, Authorize.self, Callback.self, TokenCommand.self,
            Status.self, List.self, Delete.self, Verify.self, RotateKey.self, KeysCommand.self, Import.self,
            RefreshDue.self, Audit.self, Doctor.self, BenchCommand.self,
        ]
    )
}

/// `--client` and `--provider`, shared by the commands that address one row.
struct RowOptions: ParsableArguments {
    @Option(name: .long, help: "The client (tenant, account) the tokens belong to.")
    var client: String

    @Option(name: .long, help: "The provider, e.g. zoho_crm or zoho_calendar.")
    var provider: String

    func validate() throws {
        for (name, value) in [("--client", client), ("--provider", provider)] {
            if value.isEmpty || value.utf8.count > 256 {
                throw ValidationError("\(name) must be 1 to 256 bytes long.")
            }
        }
    }
}
