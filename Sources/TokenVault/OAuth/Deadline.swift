import Foundation
import Synchronization

/// Thrown by `withDeadline` when the operation did not finish in time.
struct DeadlineExceeded: Error {}

/// Runs `operation` and returns its result, or throws `DeadlineExceeded` after `seconds`, whichever is first.
///
/// Returns at the deadline even if the operation ignores cancellation (the toolchain's URLSession on Linux
/// does not always honour `timeoutInterval`); the operation is cancelled and its late result dropped.
func withDeadline<T: Sendable>(
    seconds: TimeInterval, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let once = ResumeOnce<T>()
    return try await withCheckedThrowingContinuation { continuation in
        once.set(continuation)
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1_000_000_000))
            guard !Task.isCancelled else { return }
            if once.resume(with: .failure(DeadlineExceeded())) { once.cancelWork() }
        }
        let work = Task {
            do {
                once.resume(with: .success(try await operation()))
            } catch {
                once.resume(with: .failure(error))
            }
            // Ends the timer now: a timer left to sleep out the deadline would hold its task (and what it captured)
            // for that long after every request, thousands of them in a busy refresher.
            timer.cancel()
        }
        once.setWork(work)
    }
}

private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

    private let work = Mutex<Task<Void, Never>?>(nil)
    private let workCancelled = Mutex(false)

    /// Called before either task starts, so `resume` always finds the continuation.
    func set(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation.withLock { $0 = continuation }
    }

    /// The operation's task, for the timer to cancel; cancelled at once if the timer already asked.
    func setWork(_ task: Task<Void, Never>) {
        let cancelNow = workCancelled.withLock { cancelled in
            if !cancelled { work.withLock { $0 = task } }
            return cancelled
        }
        if cancelNow { task.cancel() }
    }

    /// Cancels the operation's task (now, or as soon as it is set).
    func cancelWork() {
        let task = workCancelled.withLock { cancelled -> Task<Void, Never>? in
            cancelled = true
            return work.withLock { $0.take() }
        }
        task?.cancel()
    }

    /// Returns true when this call resumed the waiter.
    @discardableResult
    func resume(with result: Result<T, any Error>) -> Bool {
        guard let continuation = continuation.withLock({ $0.take() }) else { return false }
        continuation.resume(with: result)
        return true
    }
}
