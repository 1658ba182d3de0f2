import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct RotateKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-key",
        abstract: "Re-seal every row that is not under the current key (online, resumable).",
        discussion: """
            The order (docs/key-rotation.md has the full runbook):
              A. add the new key to TOKEN_VAULT_PREVIOUS_KEYS everywhere, so that every
                 instance can open rows sealed with it;
              B. make it TOKEN_VAULT_KEY (or TOKEN_VAULT_KEY_FILE) and move the old key to
                 the previous keys, everywhere: services keep working and seal new
                 writes with the new key;
              C. run rotate-key;
              D. run `token-vault verify` with only the new key; when it passes, retire
                 the old key.

            Safe to kill at any moment and run again: each row switches keys in one atomic update, and a row \
            that a service changed meanwhile is re-read, never overwritten. Ctrl-C stops after the current batch.

            Examples:
              token-vault rotate-key --dry-run
              token-vault rotate-key
              token-vault rotate-key --batch-size 5000 --json
            """)

    @Option(help: "Rows re-sealed per statement (2000 was fastest on a 2-core test machine).")
    var batchSize = 2000

    @Flag(help: "Only count the rows that would be re-sealed.")
    var dryRun = false

    @Flag(help: "Print the report as JSON on stdout.")
    var json = false

    func validate() throws {
        guard (1...50_000).contains(batchSize) else { throw ValidationError("--batch-size must be 1 to 50000.") }
    }

    func run() async throws {
        let stop = StopRequest(message: "stopping after the current batch (Ctrl-C again to stop at once)…")
        let bar = ProgressBar(label: "rotate-key")
        let report = try await CLI.withVault { vault in
            try await vault.rotateKeys(
                batchSize: batchSize, dryRun: dryRun,
                progress: { bar.update(done: $0.done, total: $0.total, elapsed: $0.elapsed) },
                shouldStop: { stop.isRequested })
        }
        bar.finish()
        if json {
            try CLI.printJSON(report)
        } else {
            print(Self.summary(report))
        }
        if !report.failures.isEmpty { throw ExitCode(1) }
        if report.interrupted { throw ExitCode(130) }
        // Rows written under an old key meanwhile (an instance still sealing with it): run again.
        if report.remaining > 0 && !report.dryRun { throw ExitCode(75) }
    }

    static func summary(_ report: RotationReport) -> String {
        var lines: [String] = []
        let keys = report.rowsByKeyIDBefore.sorted { $0.key < $1.key }
            .map { "\($0.key)\($0.key == report.currentKeyID.rawValue ? " (current)" : ""): \($0.value)" }
        lines.append("rows by key before: \(keys.isEmpty ? "none" : keys.joined(separator: ", "))")
        if report.dryRun {
            lines.append("dry run: \(CLI.rows(report.toReseal)) would be re-sealed under key \(report.currentKeyID)")
            return lines.joined(separator: "\n")
        }
        for failure in report.failures {
            lines.append(
                "FAIL client '\(CLI.printable(failure.clientID))', provider '\(CLI.printable(failure.provider))', \(failure.field): \(failure.reason)"
                    + " (key \(failure.keyID)); left as it is")
        }
        let rate =
            report.seconds > 0 ? String(format: " in %.1f s (%.0f rows/s)", report.seconds, report.rowsPerSecond) : ""
        lines.append("re-sealed \(CLI.rows(report.resealed)) under key \(report.currentKeyID)\(rate)")
        if report.changedMeanwhile > 0 {
            lines.append(
                "\(CLI.rows(report.changedMeanwhile)) \(report.changedMeanwhile == 1 ? "was" : "were") re-sealed by services meanwhile"
            )
        }
        let unopenable = report.failures.count
        let movable = report.remaining - unopenable
        if report.interrupted {
            lines.append(
                "interrupted: \(CLI.rows(report.remaining)) \(report.remaining == 1 ? "remains" : "remain"); run "
                    + "`token-vault rotate-key` again to finish")
        } else if report.remaining == 0 {
            lines.append(
                "every row is under the current key; check with `token-vault verify` using only the new key, then "
                    + "retire the old key")
        } else {
            if unopenable > 0 {
                lines.append(
                    "\(CLI.rows(unopenable)) cannot be opened (FAIL above) and \(unopenable == 1 ? "stays" : "stay") under the old key: running again "
                        + "will not help; restore them from a backup or store new tokens for them")
            }
            if movable > 0 {
                lines.append(
                    "\(CLI.rows(movable)) \(movable == 1 ? "was" : "were") written under an old key while this ran (an instance still sealing with "
                        + "it?); run rotate-key again once every instance uses the new key")
            }
        }
        return lines.joined(separator: "\n")
    }
}
