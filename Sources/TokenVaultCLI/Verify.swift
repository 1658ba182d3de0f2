import ArgumentParser
import TokenVault
import TokenVaultCommandSupport

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open every stored secret; exit 1 and name each row that fails.",
        discussion: """
            Prints the number of rows under each key id. Run it with only the new key configured after a \
            rotation: when it passes, no row needs the old key any more.

            Examples:
              token-vault verify
              token-vault verify --json
            """)

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: "Rows read per query.")
    var batchSize = 500

    func validate() throws {
        guard (1...100_000).contains(batchSize) else { throw ValidationError("--batch-size must be 1 to 100000.") }
    }

    func run() async throws {
        let (report, retirable) = try await CLI.withVault { vault in
            let report = try await vault.verify(batchSize: batchSize)
            // A previous key is retirable once no row and no audit event needs it; the audit trail is read only
            // when some previous key holds no row.
            let rowless = vault.configuration.keyring.previous.map(\.id).filter {
                report.rowsByKeyID[$0.rawValue, default: 0] == 0
            }
            let uses = rowless.isEmpty ? [:] : try await vault.keyUse()
            return (report, rowless.filter { uses[$0] == nil })
        }
        CLI.warnRetirable(retirable)
        if json {
            try CLI.printJSON(report)
        } else {
            for failure in report.failures {
                print(
                    "FAIL client '\(CLI.printable(failure.clientID))', provider '\(CLI.printable(failure.provider))', \(failure.field): "
                        + "\(failure.reason) (key \(failure.keyID))")
            }
            for (keyID, count) in report.rowsByKeyID.sorted(by: { $0.key < $1.key }) {
                print("key \(keyID): \(CLI.rows(count))")
            }
            print(
                "\(CLI.rows(report.rows)) checked, \(report.failures.count) failing "
                    + "field\(report.failures.count == 1 ? "" : "s")")
        }
        if !report.ok { throw ExitCode(1) }
    }
}
