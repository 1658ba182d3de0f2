/// In-process single flight: concurrent callers for the same (client, provider) share one refresh.
/// (Across processes, the advisory lock in `TokenRepository.beginRefresh` does the same.)
actor RefreshFlights {
    private var inFlight: [RowKey: Task<AccessToken, any Error>] = [:]

    func run(
        client: String, provider: String, _ operation: @escaping @Sendable () async throws(VaultError) -> AccessToken
    ) async throws(VaultError) -> AccessToken {
        // By bytes: canonically equivalent ids are different rows, and must never share a refresh.
        let key = RowKey(client: client, provider: provider)
        let task: Task<AccessToken, any Error>
        if let existing = inFlight[key] {
            task = existing
        } else {
            // Unstructured on purpose: a caller that is cancelled must not cancel the refresh the others wait for.
            task = Task { try await operation() }
            inFlight[key] = task
        }
        let result = await task.result
        if inFlight[key] == task { inFlight[key] = nil }
        switch result {
        case .success(let token): return token
        case .failure(let error as VaultError): throw error
        case .failure(let error): throw VaultError(.providerError, "refresh failed: \(error)")
        }
    }
}
