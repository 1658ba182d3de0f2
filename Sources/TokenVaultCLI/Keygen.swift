import ArgumentParser
import TokenVault

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a new random key (standard base64 of 32 bytes) on stdout.",
        discussion: """
            Write it straight into a file that only you can read, then put it in the secret manager that \
            delivers it to the service as a file (TOKEN_VAULT_KEY_FILE, mode 0400, owned by the service \
            user); never paste it into a shell history, a ticket or the repository. Keep it as safe as the \
            data: without it, no stored token can be read again. Keys/README.md has the details.

            Examples:
              (umask 077; token-vault keygen > token-vault.key)   # for the secret manager
              export TOKEN_VAULT_KEY_FILE=/run/secrets/token-vault.key  # as mounted
            """)

    func run() throws {
        let key = VaultKey.generate()
        print(key.exportBase64())
    }
}
