import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A progress bar on stderr when it is a terminal: done of total, rate, time left. Silent otherwise.
package final class ProgressBar: Sendable {
    private let enabled: Bool
    private let label: String
    private let lastDraw = Mutex(Date.distantPast)

    package init(label: String, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.enabled = enabled
    }

    package func update(done: Int, total: Int, elapsed: TimeInterval, force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        let draw = lastDraw.withLock { lastDraw in
            guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return false }
            lastDraw = now
            return true
        }
        guard draw else { return }
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let left = rate > 0 ? Double(max(0, total - done)) / rate : 0
        let line =
            "\r\(label) [\(bar)] \(done)/\(total) rows  \(Int(rate)) rows/s  \(Self.duration(left)) left   "
        FileHandle.standardError.write(Data(line.utf8))
    }

    package func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }

    package static func duration(_ seconds: TimeInterval) -> String {
        let total = Int(seconds.rounded())
        return String(format: "%d:%02d:%02d", total / 3600, (total / 60) % 60, total % 60)
    }
}

/// Turns Ctrl-C (SIGINT) and SIGTERM into a flag that long commands check between batches.
package final class StopRequest: Sendable {
    private struct State {
        var requested = false
        var message: String
        /// Only kept alive.
        var sources: [any DispatchSourceSignal] = []
    }

    private let state: Mutex<State>

    /// - Parameter message: what the first Ctrl-C prints (the second one quits at once).
    package init(message: String) {
        state = Mutex(State(message: message))
        let handler: @Sendable () -> Void = { [weak self] in
            guard let self else { return }
            let (first, message) = self.state.withLock { state in
                defer { state.requested = true }
                return (!state.requested, state.message)
            }
            if first {
                FileHandle.standardError.write(Data("\n\(message)\n".utf8))
            } else {
                exit(130)  // a second Ctrl-C: stop now; every row is still whole
            }
        }
        // Made inside the lock: a source made outside could not be moved into it (it is not Sendable).
        state.withLock { state in
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler(handler: handler)
                source.resume()
                state.sources.append(source)
            }
        }
    }

    /// What the first Ctrl-C prints; a long command that moves on to other work (the bench's next run) updates it.
    package var message: String {
        get { state.withLock { $0.message } }
        set { state.withLock { $0.message = newValue } }
    }

    package var isRequested: Bool { state.withLock { $0.requested } }
}
