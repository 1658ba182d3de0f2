import Foundation

/// Ctrl-C for the bench, as `StopRequest` does it for the CLI's commands, except that the message names the
/// scratch schema of the run under way: with `--runs`, each run has its own. The first Ctrl-C asks the bench to stop
/// before its next timed turn (and drop the schema); a second one quits at once and leaves the schema.
final class BenchStop: @unchecked Sendable {
    // @unchecked: `requested` and `schema` are guarded by `lock`; the sources are only kept alive.
    private let lock = NSLock()
    private var requested = false
    private var currentSchema = ""
    private var sources: [any DispatchSourceSignal] = []

    init() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                let (first, schema) = self.lock.withLock {
                    defer { self.requested = true }
                    return (!self.requested, self.currentSchema)
                }
                if first {
                    FileHandle.standardError.write(
                        Data(
                            ("\nbench: stopping before the next turn and dropping the scratch schema \(schema) (Ctrl-C "
                                + "again to quit at once and leave it; then: DROP SCHEMA \(schema) CASCADE)…\n").utf8))
                } else {
                    exit(130)  // a second Ctrl-C: stop now; the schema stays, as the first message said
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// The scratch schema of the run under way, which the message names.
    var schema: String {
        get { lock.withLock { currentSchema } }
        set { lock.withLock { currentSchema = newValue } }
    }

    var isRequested: Bool { lock.withLock { requested } }
}
