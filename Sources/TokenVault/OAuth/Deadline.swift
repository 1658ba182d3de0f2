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
        let work = Task {
            do {
                once.resume(with: .success(try await operation()))
            } catch {
                once.resume(with: .failure(error))
            }
        }
        Task {
            try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1_000_000_000))
            if once.resume(with: .failure(DeadlineExceeded())) { work.cancel() }
        }
    }
}

private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

    /// Called before either task starts, so `resume` always finds the continuation.
    func set(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation.withLock { $0 = continuation }
    }

    /// Returns true when this call resumed the waiter.
    @discardableResult
    func resume(with result: Result<T, any Error>) -> Bool {
        guard let continuation = continuation.withLock({ $0.take() }) else { return false }
        continuation.resume(with: result)
        return true
    }
}
