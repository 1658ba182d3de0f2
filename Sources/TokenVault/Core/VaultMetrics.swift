import CoreMetrics

/// The vault's metrics, through swift-metrics (docs/refresh.md, "Metrics", names and labels). Labels carry the
/// provider name, an outcome or error code, a field name or a key id: never a client id (unbounded) and never a
/// token.
package struct VaultMetrics: Sendable {
    let factory: any MetricsFactory

    /// Metrics made with `factory`; nil: swift-metrics' bootstrapped `MetricsSystem.factory`.
    package init(factory: (any MetricsFactory)?) {
        self.factory = factory ?? MetricsSystem.factory
    }

    /// A refresh ended: `outcome` is `refreshed`, `needs_reauthorization` or an error code.
    func refresh(provider: String, outcome: String) {
        Counter(
            label: "token_vault_refreshes_total", dimensions: [("provider", provider), ("outcome", outcome)],
            factory: factory
        ).increment()
    }

    /// How long the provider took to answer a refresh (all its attempts).
    func refreshDuration(provider: String, nanoseconds: Int64) {
        CoreMetrics.Timer(
            label: "token_vault_refresh_duration_seconds", dimensions: [("provider", provider)], factory: factory
        ).recordNanoseconds(nanoseconds)
    }

    /// A caller found another caller's refresh lease live and waited for it.
    func leaseWait(provider: String) {
        Counter(label: "token_vault_refresh_lease_waits_total", dimensions: [("provider", provider)], factory: factory)
            .increment()
    }

    /// A caller waited for a pooled connection; `timedOut` when the wait limit passed.
    func poolWait(timedOut: Bool) {
        Counter(
            label: timedOut ? "token_vault_pool_wait_timeouts_total" : "token_vault_pool_waits_total",
            factory: factory
        ).increment()
    }

    /// A stored value did not open: `field` is `access_token` or `refresh_token`, `reason` the error code.
    func openFailure(field: String, reason: String) {
        Counter(
            label: "token_vault_open_failures_total", dimensions: [("field", field), ("reason", reason)],
            factory: factory
        ).increment()
    }

    /// After `verify`: the rows sealed under `keyID`.
    func rows(keyID: String, count: Int) {
        Gauge(label: "token_vault_rows", dimensions: [("key_id", keyID)], factory: factory).record(count)
    }
}
