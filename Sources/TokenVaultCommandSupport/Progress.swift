import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A progress bar on stderr when it is a terminal: done of total, rate, time left. Silent otherwise.
package final class ProgressBar: @unchecked Sendable {
    // @unchecked: `lastDraw` is guarded by `lock`.
    private let enabled: Bool
    private let label: String
    private let lock = NSLock()
    private var lastDraw = Date.distantPast

    package init(label: String, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.enabled = enabled
    }

    package func update(done: Int, total: Int, elapsed: TimeInterval, force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        let draw = lock.withLock {
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
package final class StopRequest: @unchecked Sendable {
    // @unchecked: `requested` is guarded by `lock`; the sources are only kept alive.
    private let lock = NSLock()
    private var requested = false
    private var sources: [any DispatchSourceSignal] = []

    package init(message: String) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                let first = self.lock.withLock {
                    defer { self.requested = true }
                    return !self.requested
                }
                if first {
                    FileHandle.standardError.write(Data("\n\(message)\n".utf8))
                } else {
                    exit(130)  // a second Ctrl-C: stop now; every row is still whole
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    package var isRequested: Bool { lock.withLock { requested } }
}
