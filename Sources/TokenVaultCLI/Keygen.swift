import ArgumentParser
import TokenVault

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a new random key (standard base64 of 32 bytes) on stdout.",
        discussion: """
            Write it straight into a file that only the service can read; never paste it into a shell history, \
            a ticket or the repository.

            Examples:
              (umask 077; token-vault keygen > /run/secrets/token-vault.key)
              export TOKEN_VAULT_KEY_FILE=/run/secrets/token-vault.key
            """)

    func run() throws {
        let key = VaultKey.generate()
        print(key.exportBase64())
    }
}
