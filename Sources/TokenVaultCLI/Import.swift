import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store many tokens from newline-delimited JSON on stdin, sealed, in batches.",
        discussion: """
            One JSON object per line: client_id, provider, and the token-response fields of `put` \
            (access_token, refresh_token, expires_in, scope, api_domain, …). expires_at (ISO 8601 or epoch \
            seconds) may replace expires_in, for exports of stored tokens. Existing rows are replaced (upsert), so \
            a partial import can simply be run again. To migrate from a plaintext table, see docs/key-rotation.md.

            Examples:
              token-vault import < tokens.ndjson
              set -o pipefail   # a failed export must not look like an empty import
              psql "$OLD_DB" -X -At -v ON_ERROR_STOP=1 \\
                  -c "SELECT json_build_object(…) …" | token-vault import
            """)

    @Option(help: "Rows per transaction (written in statements of at most 1,000 rows).")
    var batchSize = 1000

    @Flag(help: "Report invalid lines and go on, instead of stopping at the first one.")
    var skipInvalid = false

    func validate() throws {
        guard (1...50_000).contains(batchSize) else { throw ValidationError("--batch-size must be 1 to 50000.") }
    }

    func run() async throws {
        let bar = ProgressBar(label: "import")
        let started = Date()
        let skipInvalid = self.skipInvalid
        let batchSize = self.batchSize
        var dropped: Set<String> = []  // field names (never values) that no line kept
        let outcome: (imported: Int, skipped: Int, stoppedAt: (Int, String)?) = try await CLI.withVault { vault in
            var batch: [ImportRecord] = []
            var imported = 0
            var skipped = 0
            var lineNumber = 0
            // Lines of at most TokenResponse.maximumBytes, read without ever holding a longer one whole.
            var lines = LineReader()
            while let next = try lines.next() {
                lineNumber += 1
                do throws(VaultError) {
                    let line: [UInt8]
                    switch next {
                    case .text(let text): line = text
                    case .tooLong(let length):
                        throw VaultError(
                            .invalidInput,
                            "the line is \(length) bytes, more than the \(TokenResponse.maximumBytes) it may have.")
                    }
                    if line.allSatisfy({ [0x20, 0x09, 0x0d, 0x0b, 0x0c].contains($0) }) { continue }
                    let record = try ImportRecord.parse(line: line)
                    dropped.formUnion(record.droppedFields)
                    batch.append(record)
                } catch {
                    guard skipInvalid else {
                        imported += try await vault.importTokens(batch)
                        return (imported, skipped, (lineNumber, error.message))
                    }
                    skipped += 1
                    FileHandle.standardError.write(
                        Data("token-vault: line \(lineNumber) skipped: \(CLI.printable(error.message))\n".utf8))
                }
                if batch.count >= batchSize {
                    imported += try await vault.importTokens(batch)
                    batch.removeAll(keepingCapacity: true)
                    bar.update(done: imported, total: imported, elapsed: Date().timeIntervalSince(started))
                }
            }
            imported += try await vault.importTokens(batch)
            return (imported, skipped, nil)
        }
        bar.finish()
        let seconds = Date().timeIntervalSince(started)
        print(
            "imported \(CLI.rows(outcome.imported)) in \(String(format: "%.1f", seconds)) s"
                + (outcome.skipped > 0
                    ? "; skipped \(outcome.skipped) invalid line\(outcome.skipped == 1 ? "" : "s")" : ""))
        CLI.noteDroppedFields(dropped)
        if let (line, message) = outcome.stoppedAt {
            throw CLI.fail(
                VaultError(
                    .invalidInput,
                    "line \(line): \(message) Stopped there; the lines before it are stored. Fix the line and run "
                        + "again (importing is an upsert), or use --skip-invalid."))
        }
    }
}
