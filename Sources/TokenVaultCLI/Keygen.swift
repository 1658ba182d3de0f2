import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

#if canImport(Glibc)
import Glibc
#endif

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a new random key: print it, or hand it straight to a wrapping command.",
        discussion: """
            Without a command, prints the key (standard base64 of 32 bytes) on stdout. Write it straight into a \
            file that only you can read, then put it in the secret manager that delivers it to the service as a \
            file (TOKEN_VAULT_KEY_FILE, mode 0400, owned by the service user); never paste it into a shell \
            history, a ticket or the repository. Keep it as safe as the data: without it, no stored token can be \
            read again.

            With a command after `--` (a program and its arguments, run without a shell), the key is written to \
            that command's stdin and to nowhere else: a KMS encrypt or an HSM wrap, whose stdout (the wrapped key) \
            goes to keygen's stdout. The plaintext key never touches a disk or a terminal. The key's id is printed \
            on stderr. The command inherits the environment (without TOKEN_VAULT_KEY, TOKEN_VAULT_PREVIOUS_KEYS, \
            DATABASE_URL, PGPASSWORD and the Zoho secrets) and has TOKEN_VAULT_KEY_COMMAND_TIMEOUT seconds (30) \
            to finish. If it fails, the key is discarded (exit 69): run keygen again. Keys/README.md has recipes \
            (AWS KMS, Google Cloud KMS, Vault Transit, sops, systemd-creds, PKCS#11).

            Examples:
              (umask 077; token-vault keygen > token-vault.key)   # for the secret manager
              export TOKEN_VAULT_KEY_FILE=/run/secrets/token-vault.key  # as mounted
              token-vault keygen -- Keys/pkcs11/wrap-key.sh > token-vault.key.wrapped
              token-vault keygen --raw -- aws kms encrypt --key-id alias/token-vault \\
                  --plaintext fileb:///dev/stdin --query CiphertextBlob --output text > token-vault.key.enc.b64
            """)

    @Flag(help: "Hand the wrapping command the key's 32 raw bytes instead of its base64 line.")
    var raw = false

    @Argument(
        parsing: .postTerminator,
        help: ArgumentHelp("A wrapping command and its arguments, after `--`.", valueName: "command"))
    var wrapCommand: [String] = []

    func validate() throws {
        if raw && wrapCommand.isEmpty {
            throw ValidationError("--raw needs a wrapping command after `--`: raw key bytes are never printed.")
        }
    }

    func run() throws {
        let key = VaultKey.generate()
        guard !wrapCommand.isEmpty else {
            // Straight from wiped memory to stdout: the key never becomes a Swift String (which cannot be wiped).
            let written = key.withKeyFileText { text in ChildProcess.write(all: text, to: STDOUT_FILENO) }
            guard written else {
                FileHandle.standardError.write(
                    Data("token-vault: could not write the key to stdout (errno \(errno)); no key was kept.\n".utf8))
                throw ExitCode(74)
            }
            return
        }
        // A command that exits without reading its stdin must not kill keygen with SIGPIPE: its status says more.
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        let seconds: Double
        do {
            seconds = try KeyCommand.timeout(environment)
        } catch {
            throw CLI.fail(error)
        }
        let withheld = KeyCommand.withheld(in: environment)
        let inherited = environment.filter { !withheld.contains($0.key) }
        let hand = { (bytes: UnsafeRawBufferPointer) in
            ChildProcess.run(
                wrapCommand, environment: inherited, input: bytes, captureOutput: false,
                timeout: .milliseconds(Int64(seconds * 1000)))
        }
        let outcome = raw ? key.withRawBytes(hand) : key.withKeyFileText(hand)
        let program = "`\(wrapCommand[0])`"
        let problem: String
        switch outcome {
        case .failure(let failure):
            problem = "cannot run \(program): \(failure.reason)"
        case .success(let result):
            switch result.ending {
            case .exited(0):
                FileHandle.standardError.write(
                    Data("token-vault: key \(key.id) handed to \(program), which exited 0.\n".utf8))
                return
            case .exited(let status): problem = "\(program) exited with status \(status)"
            case .signalled(let signal): problem = "\(program) was killed by signal \(signal)"
            case .lost: problem = "\(program) could not be waited for"
            case .timedOut, .outputTooLarge:
                problem = "\(program) did not finish within \(VaultError.seconds(seconds)) and was killed"
            }
        }
        FileHandle.standardError.write(
            Data(
                "token-vault: error: \(CLI.printable(problem)); the new key was discarded. Run keygen again.\n".utf8))
        throw ExitCode(69)
    }
}
