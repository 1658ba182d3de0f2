import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct RefreshDue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refresh-due",
        abstract: "Refresh every access token that expires soon, in one pass (for cron or a systemd timer).",
        discussion: """
            Refreshes the access tokens that are missing or expire within the window, a few at a time, through \
            the same single flight as `token`: with other refreshers and services running, each token is still \
            refreshed once; a row another process is refreshing is left to it. Rows that need re-authorization \
            are counted, not sent to the provider again.

            Exit status: 0 when every due row is fresh; 77 when some need re-authorization (and nothing failed); \
            otherwise that of the most serious failure (75 rate limited or timed out, 69 provider unreachable, \
            78 configuration). See docs/cli.md.

            Examples:
              token-vault refresh-due
              token-vault refresh-due --within 15m --concurrency 16 --json
            """)

    @Option(
        help: ArgumentHelp(
            "Refresh tokens that expire within this window: seconds, or a number with s, m or h (default: the "
                + "refresh margin plus a minute).", valueName: "duration"))
    var within: String?

    @Option(help: "Rows refreshed at once (1 to 1000).")
    var concurrency = 8

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard (1...1000).contains(concurrency) else { throw ValidationError("--concurrency must be 1 to 1000.") }
        if let within, Self.seconds(within) == nil {
            throw ValidationError("--within must be seconds, or a number with s, m or h (such as 900, 15m, 1h).")
        }
    }

    /// "900", "900s", "15m", "1h" in seconds; nil for anything else.
    static func seconds(_ text: String) -> TimeInterval? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        var number = Substring(text)
        var unit = 1.0
        if let last = text.last, let factor = units[last] {
            number = number.dropLast()
            unit = factor
        }
        guard let value = Double(number), value.isFinite, value >= 0, value * unit <= 31_536_000 else { return nil }
        return value * unit
    }

    func run() async throws {
        let bar = ProgressBar(label: "refresh-due")
        let window = within.flatMap(Self.seconds)
        let concurrency = self.concurrency
        let started = Date()
        let report = try await CLI.withVault { vault in
            try await vault.refreshDue(within: window, concurrency: concurrency) { report in
                bar.update(done: report.done, total: report.due, elapsed: Date().timeIntervalSince(started))
            }
        }
        bar.finish()
        if json {
            try CLI.printJSON(report)
        } else {
            var parts = [
                "\(report.refreshed) refreshed", "\(report.alreadyFresh) already fresh",
                "\(report.refreshingElsewhere) refreshing elsewhere",
            ]
            if report.needsReauthorization > 0 {
                parts.append("\(report.needsReauthorization) need re-authorization (token-vault list)")
            }
            if report.unknownProvider > 0 { parts.append("\(report.unknownProvider) of providers not configured") }
            for (code, count) in report.failed.sorted(by: { $0.key < $1.key }) {
                parts.append("\(count) failed (\(code))")
            }
            print(
                "\(CLI.rows(report.due)) due within the window: " + parts.joined(separator: ", ")
                    + String(format: "; %.1f s", report.seconds))
        }
        if let worst = report.failed.keys.map({ VaultError.Code.named($0).map(CLI.exitCode(for:)) ?? 70 }).max() {
            throw ExitCode(worst)
        }
        if report.needsReauthorization > 0 { throw ExitCode(77) }
    }
}
