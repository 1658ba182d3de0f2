import Synchronization

/// In-process single flight: concurrent callers for the same (client, provider) share one refresh.
/// (Across processes, the refresh lease claimed by `TokenRepository.claimRefreshLease` does the same.)
///
/// A lock rather than an actor: the table is only looked at and changed, never held across an await, so the
/// two short critical sections need no executor hops.
final class RefreshFlights: Sendable {
    private let inFlight = Mutex<[RowKey: Task<AccessToken, any Error>]>([:])

    func run(
        client: String, provider: String, _ operation: @escaping @Sendable () async throws(VaultError) -> AccessToken
    ) async throws(VaultError) -> AccessToken {
        // By bytes: canonically equivalent ids are different rows, and must never share a refresh.
        let key = RowKey(client: client, provider: provider)
        let task = inFlight.withLock { inFlight in
            if let existing = inFlight[key] { return existing }
            // Unstructured on purpose: a caller that is cancelled must not cancel the refresh the others wait for.
            let task = Task<AccessToken, any Error> { try await operation() }
            inFlight[key] = task
            return task
        }
        let result = await task.result
        inFlight.withLock { inFlight in
            if inFlight[key] == task { inFlight[key] = nil }
        }
        switch result {
        case .success(let token): return token
        case .failure(let error as VaultError): throw error
        case .failure(let error):
            throw VaultError(.providerError, "the refresh failed (\(type(of: error))).", underlying: error)
        }
    }

    /// Waits for every refresh in flight to end (each is bounded by the refresh policy), so that a provider's
    /// answer is written before the connections close.
    func waitForAll() async {
        let tasks = inFlight.withLock { Array($0.values) }
        for task in tasks { _ = await task.result }
    }
}
