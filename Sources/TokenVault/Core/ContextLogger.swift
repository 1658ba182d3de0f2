import Logging

/// The logger a vault's log line goes to: the one the vault was made with, carrying the calling task's context.
///
/// A service binds its request's context with swift-log's task-local logger (`withLogger(mergingMetadata:
/// ["request.id": …]) { … }`); the vault's lines for that call then carry that metadata (and its metadata provider,
/// for trace ids), on the vault's own logger. A vault made without a logger logs to the task-local logger itself
/// when a `withLogger` scope bound one, and nowhere otherwise. Computed at each log line, not per call, so that a
/// call that logs nothing pays nothing.
package struct ContextLogger: Sendable {
    /// The vault's own logger; nil when it was made without one.
    let base: Logger?

    package init(_ base: Logger?) {
        self.base = base
    }

    /// A logger that drops everything: what a vault made without a logger uses outside a `withLogger` scope.
    static let silent = Logger(label: "token-vault", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The logger for a line logged now, from the current task.
    package var current: Logger {
        let bound = Logger.current
        let metadata = bound.handler.metadata
        let provider = bound.handler.metadataProvider
        guard var logger = base else {
            // swift-log's unbound task-local logger has the empty label, its documented sign that no `withLogger`
            // scope is active; `withLogger(mergingMetadata:)` without an outer binding keeps that label but adds
            // metadata, which the service means to see.
            let isBound = !bound.label.isEmpty || !metadata.isEmpty || provider != nil
            return isBound ? bound : Self.silent
        }
        for (key, value) in metadata where logger[metadataKey: key] == nil {
            logger[metadataKey: key] = value
        }
        if logger.handler.metadataProvider == nil, let provider {
            logger.handler.metadataProvider = provider
        }
        return logger
    }
}
