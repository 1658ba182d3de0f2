import Logging
import Synchronization

/// Collects log lines with their label, level and every piece of metadata (the handler's and the line's).
final class LogLines: Sendable {
    struct Line: Sendable, CustomStringConvertible {
        let label: String
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
        var description: String { "[\(label)] \(level) \(message) \(metadata)" }
    }

    private let stored = Mutex<[Line]>([])
    var all: [Line] { stored.withLock { $0 } }

    func logger(label: String) -> Logger {
        Logger(label: label, factory: { label in Handler(label: label, sink: self) })
    }

    fileprivate func append(_ line: Line) { stored.withLock { $0.append(line) } }

    private struct Handler: LogHandler {
        let label: String
        let sink: LogLines
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var all = metadata
            if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
            if let own = event.metadata { all.merge(own) { $1 } }
            sink.append(
                Line(
                    label: label, level: event.level, message: event.message.description,
                    metadata: all.mapValues { "\($0)" }))
        }
    }
}
