import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `token-vault bench …` runs `token-vault-bench …`, installed next to `token-vault`. The bench lives in its own
/// executable so that the tool operators ship carries no benchmark or test code (the bench links a local OAuth
/// endpoint and raw libpq baselines).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the vault against raw libsodium and libpq (runs token-vault-bench; see its --help).",
        shouldDisplay: true)

    @Argument(parsing: .allUnrecognized, help: "Options for token-vault-bench.")
    var arguments: [String] = []

    func run() throws {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent()
        let bench = directory.appendingPathComponent("token-vault-bench").path
        guard FileManager.default.isExecutableFile(atPath: bench) else {
            FileHandle.standardError.write(
                Data(
                    ("token-vault: error: the bench is a separate executable, token-vault-bench, and it is not "
                        + "installed next to this one (\(directory.path)). Build it with `swift build -c release "
                        + "--product token-vault-bench`, or run it directly.\n").utf8))
            throw ExitCode(69)
        }
        // exec, not spawn: Ctrl-C, the exit status and the standard streams are the bench's own.
        let argv = ([bench] + arguments).map { strdup($0) } + [nil]
        execv(bench, argv)
        FileHandle.standardError.write(
            Data("token-vault: error: could not run \(bench): \(String(cString: strerror(errno))).\n".utf8))
        throw ExitCode(69)
    }
}
