import Foundation
import TokenVault
import TokenVaultCommandSupport
import TokenVaultTesting

#if canImport(Glibc)
import Glibc
#endif

/// Runs each figure of `token-vault bench` in a scratch schema, vault and baseline alternating.
struct BenchRunner {
    static let names = [
        "seal_open", "put", "get", "access_token", "import", "rotate", "stampede", "isolation", "refresh_due",
        "audit_put", "audit_read",
    ]

    struct Settings {
        var databaseURL: String
        var duration: Double
        var rounds: Int
        var rows: Int
        var clients: Int
        var callers: Int
        var only: Set<String>
        /// Also measure the baseline with pure CPU work added per call (`--calibrate`): this many nanoseconds, or
        /// the vault's work beyond the baseline's, measured warm, when nil.
        var calibrate = false
        var calibrateNanoseconds: Double?
        var progress: (String) -> Void
    }

    let settings: Settings
    /// Set by Ctrl-C: the bench stops before its next timed turn and drops its schema.
    var stop: StopRequest?

    /// Thrown when Ctrl-C stopped the bench between turns.
    struct Interrupted: Error {}

    /// A calibration was asked for before the vault's work it adds was measured: a bug in the bench's order.
    struct CalibrationWithoutWork: Error, CustomStringConvertible {
        let figure: String
        var description: String {
            "bench: the vault's work per call for \(figure) was not measured before its calibration"
        }
    }

    func checkStop() throws {
        if stop?.isRequested == true { throw Interrupted() }
    }
    let schema = "token_vault_bench_\(UInt32.random(in: 0...UInt32.max))"
    let provider = "zoho_crm"
    // Realistic Zoho token lengths: "1000." + 32 hex + "." + 32 hex.
    let accessToken = "1000." + String(repeating: "a1b2c3d4", count: 8) + "." + String(repeating: "e5f6", count: 8)
    let refreshToken = "1000." + String(repeating: "0f1e2d3c", count: 8) + "." + String(repeating: "4b5a", count: 8)
    var sizes: SealedSizes {
        SealedSizes(accessTokenLength: accessToken.utf8.count, refreshTokenLength: refreshToken.utf8.count)
    }

    /// The scratch schema could not be dropped after the run (which ended with `cause`, or succeeded).
    struct SchemaLeft: Error {
        let schema: String
        let dropError: any Error
        let cause: (any Error)?
    }

    func run() async throws -> BenchReport {
        let url = settings.databaseURL
        try await AdminSQL.execute("CREATE SCHEMA \(schema)", url: url)
        let outcome: Result<BenchReport, any Error>
        do {
            outcome = .success(try await measureAll())
        } catch {
            outcome = .failure(error)
        }
        do {
            try await AdminSQL.execute("DROP SCHEMA \(schema) CASCADE", url: url)
        } catch {
            if case .failure(let cause) = outcome { throw SchemaLeft(schema: schema, dropError: error, cause: cause) }
            throw SchemaLeft(schema: schema, dropError: error, cause: nil)
        }
        return try outcome.get()
    }

    /// A figure's name with its connection count, as progress lines and the calibration table say it.
    static func label(_ name: String, connections: Int) -> String {
        "\(name), \(connections) connection\(connections == 1 ? "" : "s")"
    }

    /// Says which figure starts, unless Ctrl-C was pressed.
    private func begin(_ figure: String) throws {
        try checkStop()
        settings.progress(figure)
    }

    /// The tokens that put, import and the vault's own work per call store: valid for an hour, Zoho-shaped.
    func benchTokens() -> TokenSet {
        TokenSet(
            accessToken: Secret(accessToken), refreshToken: Secret(refreshToken),
            expiresAt: Date().addingTimeInterval(3600), scopes: "ZohoCRM.modules.ALL",
            metadata: ["api_domain": .string("https://www.zohoapis.eu")])
    }

    /// A vault on the scratch schema. The audit is off unless asked for: the figures against raw libpq compare the
    /// same SQL, and `audit_put` and `audit_read` measure what the audit adds.
    func vault(
        connections: Int, keyring: Keyring, providers: [OAuthProvider] = [], audit: Bool = false,
        auditReads: Bool = false
    ) throws(VaultError) -> Vault {
        var configuration = VaultConfiguration(
            databaseURL: settings.databaseURL, keyring: keyring, maximumConnections: connections, providers: providers)
        configuration.schema = schema
        configuration.audit = .init(enabled: audit, auditReads: auditReads)
        return try Vault(configuration: configuration)
    }

    private func measureAll() async throws -> BenchReport {
        var report = BenchReport()
        let keyring = try Keyring(current: .generate())
        let setup = try vault(connections: 1, keyring: keyring)
        try await setup.migrate()
        await setup.shutdown()
        let clientIDs = (0..<settings.clients).map { "bench-client-\($0)" }
        let want = settings.only
        let rowFigures = want.intersection(["put", "get", "access_token", "audit_put"])
        // The vault's own work per call, first: the calibrations add as much work to the baseline's calls. It
        // needs a stored row, and put then starts from stored rows too, as get does.
        var extraWork: [String: Double] = [:]
        if !rowFigures.isEmpty {
            try checkStop()
            try await seedValid(keyring: keyring, clients: clientIDs)
            try begin("the vault's own work per call")
            (report.work, extraWork) = try await vaultWork(
                keyring: keyring, clients: clientIDs, kinds: rowFigures, beyondBaseline: settings.calibrate)
        }
        let burn = settings.calibrate ? CPUBurn() : nil
        report.calibrationWorkIsFixed = settings.calibrateNanoseconds != nil
        /// The calibration's work for `figure`: what the vault does beyond the baseline's work, or `--calibrate-ns`.
        func calibration(_ figure: String) throws -> (CPUBurn, Double)? {
            guard let burn else { return nil }
            if let fixed = settings.calibrateNanoseconds { return (burn, fixed) }
            guard let work = extraWork[figure] else { throw CalibrationWithoutWork(figure: figure) }
            return (burn, work)
        }

        if want.contains("seal_open") {
            try begin("seal_open")
            report.results.append(try await sealOpen(keyring: keyring))
        }
        if want.contains("put") {
            for connections in [1, 4] {
                try begin(Self.label("put", connections: connections))
                let (result, calibration) = try await put(
                    connections: connections, keyring: keyring, clients: clientIDs,
                    burn: try calibration("put"))
                report.results.append(result)
                report.add(calibration)
            }
        }
        if want.contains("put"), want.contains("get") || want.contains("access_token") {
            // Valid sealed tokens in every row again: the put baseline wrote random bytes over them.
            try checkStop()
            try await seedValid(keyring: keyring, clients: clientIDs)
        }
        if want.contains("get") {
            for connections in [1, 4] {
                try begin(Self.label("get", connections: connections))
                let (result, calibration) = try await get(
                    name: "get", connections: connections, keyring: keyring, clients: clientIDs,
                    burn: try calibration("get"))
                report.results.append(result)
                report.add(calibration)
            }
        }
        if want.contains("access_token") {
            try begin(Self.label("access_token", connections: 4))
            let (result, calibration) = try await get(
                name: "access_token", connections: 4, keyring: keyring, clients: clientIDs,
                burn: try calibration("access_token"))
            report.results.append(result)
            report.add(calibration)
        }
        if want.contains("audit_put") {
            try begin(Self.label("audit_put", connections: 4))
            report.results.append(try await auditPut(keyring: keyring, clients: clientIDs))
        }
        if want.contains("audit_read") {
            try checkStop()
            try await seedValid(keyring: keyring, clients: clientIDs)
            try begin(Self.label("audit_read", connections: 4))
            report.results.append(try await auditRead(keyring: keyring, clients: clientIDs))
        }
        if want.contains("import") {
            try begin("import, \(settings.rows) rows")
            report.results.append(try await importRows(keyring: keyring))
        }
        if want.contains("rotate") {
            try begin("rotate, \(settings.rows) rows")
            let (result, seconds) = try await rotate()
            report.results.append(result)
            report.rotateRows = settings.rows
            report.rotateSeconds = seconds
        }
        if want.contains("stampede") {
            try begin("stampede, \(settings.callers) callers")
            report.stampede = try await stampede(keyring: keyring)
        }
        if want.contains("isolation") {
            try begin("isolation, \(Self.isolationConnections) rows refreshing at a slow provider")
            report.isolation = try await isolation(keyring: keyring)
        }
        if want.contains("refresh_due") {
            try begin("refresh_due, \(refreshDueRows) rows, two refreshers")
            report.refreshDue = try await refreshDue(keyring: keyring)
        }
        try checkStop()  // the last figure's turns are done; Ctrl-C during them still stops without a report
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        report.peakResidentBytes = Int(usage.ru_maxrss) * 1024
        report.nonceSource = NonceSource.usesVDSO ? "vdso" : "libsodium"
        return report
    }

    /// Alternates `vault` and `baseline`, each returning operations done in the seconds it is given; `prepare`
    /// runs, untimed, before each of them (its argument is true before the vault's turn).
    /// With `warmUp`, each side first runs untimed for a moment: the vault's pool opens its connections on first
    /// use, and the baseline's connections are open before timing, so without it the vault's first turn would pay
    /// for connecting; both sides also prepare their statements then.
    private func alternate(
        name: String, connections: Int, target: Double, prepare: ((_ vaultSide: Bool) async throws -> Void)? = nil,
        warmUp: Bool = false, vault: (Double) async throws -> Int,
        baseline: (Double) async throws -> Int, blocking: ((Double) async throws -> Int)? = nil
    ) async throws -> BenchResult {
        let slice = settings.duration / Double(settings.rounds) / 2
        if warmUp {
            _ = try await vault(min(slice, 0.2))
            _ = try await baseline(min(slice, 0.2))
            _ = try await blocking?(min(slice, 0.2))
        }
        // The blocking loop is a reference, not half of a ratio: one turn of it, before the rounds.
        var blockingOps = 0
        var blockingTime = 0.0
        if let blocking {
            let started = Date()
            blockingOps = try await blocking(slice)
            blockingTime = Date().timeIntervalSince(started)
        }
        var vaultOps = 0
        var baselineOps = 0
        var vaultTime = 0.0
        var baselineTime = 0.0
        var vaultUsage = Usage()
        var baselineUsage = Usage()
        // Each round's two turns run back to back, so their ratio is little moved by the machine's slow drift.
        var roundRatios: [Double] = []
        for round in 0..<settings.rounds {
            // ABBA order, so that neither side always runs first (warm caches, a just-woken backend).
            var rates = (vault: 0.0, baseline: 0.0)
            for side in round % 2 == 0 ? [true, false] : [false, true] {
                try checkStop()
                try await prepare?(side)  // not timed
                let started = Date()
                let before = Usage.now()
                if side {
                    let ops = try await vault(slice)
                    let seconds = Date().timeIntervalSince(started)
                    (vaultOps, vaultTime, rates.vault) = (vaultOps + ops, vaultTime + seconds, Double(ops) / seconds)
                    vaultUsage.add(Usage.now(), since: before)
                } else {
                    let ops = try await baseline(slice)
                    let seconds = Date().timeIntervalSince(started)
                    (baselineOps, baselineTime, rates.baseline) = (
                        baselineOps + ops, baselineTime + seconds, Double(ops) / seconds
                    )
                    baselineUsage.add(Usage.now(), since: before)
                }
            }
            roundRatios.append(rates.vault / rates.baseline)
        }
        let vaultRate = Double(vaultOps) / vaultTime
        let baselineRate = Double(baselineOps) / baselineTime
        let interval = Self.interval95(roundRatios)
        return BenchResult(
            name: name, connections: connections, vaultOpsPerS: vaultRate, baselineOpsPerS: baselineRate,
            ratio: vaultRate / baselineRate, target: target, roundRatioMedian: Self.median(roundRatios),
            ratioLow: interval?.low, ratioHigh: interval?.high,
            blockingOpsPerS: blocking == nil ? nil : Double(blockingOps) / blockingTime,
            vaultCPUMicrosecondsPerOp: vaultUsage.cpuSeconds * 1e6 / Double(vaultOps),
            baselineCPUMicrosecondsPerOp: baselineUsage.cpuSeconds * 1e6 / Double(baselineOps),
            vaultSwitchesPerOp: Double(vaultUsage.switches) / Double(vaultOps),
            baselineSwitchesPerOp: Double(baselineUsage.switches) / Double(baselineOps))
    }

    /// A 95 % confidence interval for the typical round's ratio (the geometric mean of the rounds' ratios), from
    /// their spread: Student's t on their logarithms, since a ratio's noise is multiplicative. It assumes the
    /// rounds are independent, so drift within a run makes it narrower than it should be. Nil with fewer than two
    /// rounds, or when a round's ratio is not a positive number (a turn that did nothing).
    static func interval95(_ ratios: [Double]) -> (low: Double, high: Double)? {
        guard ratios.count >= 2, ratios.allSatisfy({ $0 > 0 && $0.isFinite }) else { return nil }
        let logs = ratios.map { Foundation.log($0) }
        let mean = logs.reduce(0, +) / Double(logs.count)
        let variance = logs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(logs.count - 1)
        let spread = studentT975(degreesOfFreedom: logs.count - 1) * (variance / Double(logs.count)).squareRoot()
        return (Foundation.exp(mean - spread), Foundation.exp(mean + spread))
    }

    /// The 97.5th percentile of Student's t distribution (two-sided 95 %).
    static func studentT975(degreesOfFreedom: Int) -> Double {
        let table: [Double] = [
            12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
            2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
        ]
        if degreesOfFreedom <= table.count { return table[max(degreesOfFreedom, 1) - 1] }
        // Beyond the table, the value at the band's lower end: never narrower than the true interval.
        return degreesOfFreedom <= 40 ? 2.042 : degreesOfFreedom <= 60 ? 2.021 : degreesOfFreedom <= 120 ? 2.000 : 1.980
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// This process's CPU time and context switches, from `getrusage`.
    struct Usage {
        var cpuSeconds = 0.0
        var switches = 0

        static func now() -> Usage {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let seconds = { (time: timeval) in Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
            return Usage(
                cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
                switches: usage.ru_nvcsw + usage.ru_nivcsw)
        }

        mutating func add(_ end: Usage, since start: Usage) {
            cpuSeconds += end.cpuSeconds - start.cpuSeconds
            switches += end.switches - start.switches
        }
    }

    private func sealOpen(keyring: Keyring) async throws -> BenchResult {
        let sealer = Sealer(keyring: keyring)
        let secret = Secret(accessToken)
        let context = SealContext(field: .accessToken, provider: provider, clientID: "bench-client-0")
        let keyID = keyring.current.id
        let size = accessToken.utf8.count
        return try await alternate(
            name: "seal_open", connections: 0, target: 0.80,
            vault: { seconds in
                try Self.timed(seconds, batch: 1000) {
                    for _ in 0..<1000 {
                        let sealed = sealer.seal(secret, context: context)
                        _ = try sealer.open(sealed, keyID: keyID, context: context)
                    }
                }
            },
            baseline: { seconds in
                Self.timed(seconds, batch: 1000) { _ = RawCrypto.sealOpenLoop(iterations: 1000, messageSize: size) }
            })
    }

    /// With `burn`, the calibration too: the baseline with that many nanoseconds of pure CPU before each call (where
    /// the vault seals), against the baseline.
    private func put(
        connections: Int, keyring: Keyring, clients: [String], burn: (CPUBurn, Double)?
    ) async throws -> (BenchResult, BenchCalibration?) {
        let vault = try vault(connections: connections, keyring: keyring)
        let raws = try await rawConnections(connections)
        // The blocking loop has its own connections: run on the baseline's, it would keep them (and their server
        // processes) warm for the baseline's next turn while the vault's sat idle.
        let blockingRaws = try await rawConnections(connections)
        let tokens = benchTokens()
        let provider = self.provider
        let keyID = keyring.current.id
        // Two rows of random bytes per client, written in turn: every put stores a new token, and an UPDATE that
        // rewrites a row with the bytes it already holds is cheaper for PostgreSQL (its WAL record logs only the
        // changed middle of the tuple: about 180 bytes against 560 for new bytes). The vault's fresh nonces
        // change every byte; so must the baseline's.
        let rows = (0..<2).flatMap { _ in
            clients.map { RawConnection.randomRow(client: $0, provider: provider, sizes: sizes, keyID: keyID) }
        }
        let result = try await alternate(
            name: "put", connections: connections, target: 0.90, warmUp: true,
            vault: { seconds in
                try await Self.concurrently(connections, seconds: seconds) { worker, index in
                    let client = clients[(index * connections + worker) % clients.count]
                    try await vault.store(tokens, client: client, provider: provider)
                }
            },
            baseline: { seconds in
                try await Self.concurrently(connections, seconds: seconds) { worker, index in
                    // Call n writes client n % count with variant (n / count) % 2: the rows alternate.
                    try await raws[worker].upsert(rows[(index * connections + worker) % rows.count])
                }
            },
            blocking: { seconds in
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for (worker, raw) in blockingRaws.enumerated() {
                        // This worker's clients (no other worker's), each with both of its rows in turn.
                        let clientIndices = stride(from: worker, to: clients.count, by: connections)
                        let mine = (0..<2).flatMap { variant in
                            clientIndices.map { rows[variant * clients.count + $0] }
                        }
                        group.addTask { try await raw.upsertLoop(rows: mine, seconds: seconds) }
                    }
                    return try await group.reduce(0, +)
                }
            })
        await vault.shutdown()
        let calibration = try await calibrate(result, burn: burn) { seconds, work in
            try await Self.concurrently(connections, seconds: seconds) { worker, index in
                work()
                try await raws[worker].upsert(rows[(index * connections + worker) % rows.count])
            }
        }
        return (result, calibration)
    }

    /// The calibration of `figure`, when `burn` is given (nil otherwise): `calls(seconds, work)` makes the
    /// baseline's calls, running `work` where the vault does its own work; it alternates with `work` burning the
    /// given nanoseconds of pure CPU and doing nothing.
    private func calibrate(
        _ figure: BenchResult, burn: (CPUBurn, Double)?,
        calls: @escaping (Double, @escaping @Sendable () -> Void) async throws -> Int
    ) async throws -> BenchCalibration? {
        guard let (burn, nanoseconds) = burn else { return nil }
        try begin(Self.label(figure.name, connections: figure.connections) + ": calibration")
        let result = try await alternate(
            name: figure.name, connections: figure.connections, target: 0, warmUp: true,
            vault: { seconds in try await calls(seconds) { burn.burn(nanoseconds: nanoseconds) } },
            baseline: { seconds in try await calls(seconds) {} })
        return BenchCalibration(
            name: figure.name, connections: figure.connections, workNanoseconds: nanoseconds, ratio: result.ratio,
            ratioLow: result.ratioLow, ratioHigh: result.ratioHigh, vaultRatio: figure.ratio)
    }

    /// Valid tokens for every bench client, for get and access_token.
    private func seedValid(keyring: Keyring, clients: [String]) async throws {
        let vault = try vault(connections: 1, keyring: keyring)
        let records = clients.map { client in
            ImportRecord(
                client: client, provider: provider,
                tokens: TokenSet(
                    accessToken: Secret(accessToken), refreshToken: Secret(refreshToken),
                    expiresAt: Date().addingTimeInterval(7200),
                    metadata: ["api_domain": .string("https://www.zohoapis.eu")]))
        }
        try await vault.importTokens(records)
        await vault.shutdown()
    }

    /// The vault's CPU per call without the database (decode + open, or seal + parameters), best of 5 runs; and
    /// with `beyondBaseline`, the part of it the baseline does not do too (open, or seal), for the calibrations.
    private func vaultWork(
        keyring: Keyring, clients: [String], kinds: Set<String>, beyondBaseline: Bool
    ) async throws -> (work: [String: Double], beyondBaseline: [String: Double]) {
        let vault = try vault(connections: 1, keyring: keyring)
        let tokens = benchTokens()
        var work: [String: Double] = [:]
        var extra: [String: Double] = [:]
        for kind in VaultWork.Kind.allCases where kinds.contains(kind.rawValue) {
            for beyond in beyondBaseline ? [false, true] : [false] {
                var best = Double.infinity
                for _ in 0..<5 {
                    best = min(
                        best,
                        try await VaultWork.nanosecondsPerCall(
                            kind, vault: vault, tokens: tokens, client: clients[0], provider: provider,
                            iterations: 20_000, beyondBaseline: beyond))
                }
                if beyond { extra[kind.rawValue] = best } else { work[kind.rawValue] = best }
            }
        }
        await vault.shutdown()
        return (work, extra)
    }

    /// With `burn`, the calibration too: the baseline with that many nanoseconds of pure CPU after each call (where
    /// the vault opens), against the baseline.
    private func get(
        name: String, connections: Int, keyring: Keyring, clients: [String], burn: (CPUBurn, Double)?
    ) async throws -> (BenchResult, BenchCalibration?) {
        let vault = try vault(
            connections: connections, keyring: keyring,
            providers: [.zoho(provider, clientID: "bench", clientSecret: Secret("bench"))])
        let raws = try await rawConnections(connections)
        let blockingRaws = try await rawConnections(connections)  // see `put`
        let provider = self.provider
        let accessPath = name == "access_token"
        let result = try await alternate(
            name: name, connections: connections, target: accessPath ? 0.85 : 0.90, warmUp: true,
            vault: { seconds in
                try await Self.concurrently(connections, seconds: seconds) { worker, index in
                    let client = clients[(index * connections + worker) % clients.count]
                    if accessPath {
                        _ = try await vault.accessToken(client: client, provider: provider)
                    } else {
                        _ = try await vault.fetch(client: client, provider: provider)
                    }
                }
            },
            baseline: { seconds in
                try await Self.concurrently(connections, seconds: seconds) { worker, index in
                    let client = clients[(index * connections + worker) % clients.count]
                    try await raws[worker].select(client: client, provider: provider)
                }
            },
            blocking: { seconds in
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for (worker, raw) in blockingRaws.enumerated() {
                        let mine = stride(from: worker, to: clients.count, by: connections).map { clients[$0] }
                        group.addTask { try await raw.selectLoop(clients: mine, provider: provider, seconds: seconds) }
                    }
                    return try await group.reduce(0, +)
                }
            })
        await vault.shutdown()
        let calibration = try await calibrate(result, burn: burn) { seconds, work in
            try await Self.concurrently(connections, seconds: seconds) { worker, index in
                try await raws[worker].select(
                    client: clients[(index * connections + worker) % clients.count], provider: provider)
                work()
            }
        }
        return (result, calibration)
    }

    /// `put` with the audit on (each store writes its event in the same statement) against the same vault with
    /// the audit off, 4 connections each, the same rows: what the audit trail costs a write.
    private func auditPut(keyring: Keyring, clients: [String]) async throws -> BenchResult {
        let audited = try vault(connections: 4, keyring: keyring, audit: true)
        let plain = try vault(connections: 4, keyring: keyring)
        let tokens = benchTokens()
        let provider = self.provider
        func stores(_ vault: Vault, _ seconds: Double) async throws -> Int {
            try await Self.concurrently(4, seconds: seconds) { worker, index in
                try await vault.store(tokens, client: clients[(index * 4 + worker) % clients.count], provider: provider)
            }
        }
        let result = try await alternate(
            name: "audit_put", connections: 4, target: 0.80, warmUp: true,
            vault: { try await stores(audited, $0) }, baseline: { try await stores(plain, $0) })
        await audited.shutdown()
        await plain.shutdown()
        return result
    }

    /// `access_token` with reads audited (a `read` event per call, in a statement of its own) against the same
    /// vault with the audit of reads off: what auditing reads costs. Information, no target.
    private func auditRead(keyring: Keyring, clients: [String]) async throws -> BenchResult {
        let audited = try vault(connections: 4, keyring: keyring, audit: true, auditReads: true)
        let plain = try vault(connections: 4, keyring: keyring, audit: true)
        let provider = self.provider
        func reads(_ vault: Vault, _ seconds: Double) async throws -> Int {
            try await Self.concurrently(4, seconds: seconds) { worker, index in
                _ = try await vault.accessToken(
                    client: clients[(index * 4 + worker) % clients.count], provider: provider)
            }
        }
        let result = try await alternate(
            name: "audit_read", connections: 4, target: 0, warmUp: true,
            vault: { try await reads(audited, $0) }, baseline: { try await reads(plain, $0) })
        await audited.shutdown()
        await plain.shutdown()
        return result
    }

    /// Both sides insert the same `rows` new rows into an emptied table, from inputs made before timing: the
    /// vault's records (tokens, metadata) and the baseline's rows of random bytes.
    private func importRows(keyring: Keyring) async throws -> BenchResult {
        let vault = try vault(connections: 1, keyring: keyring)
        let raw = try await rawConnections(1)[0]
        // Opens the pool's connection before timing, as the baseline's is: a no-op on a migrated schema.
        _ = try await vault.migrate()
        let provider = self.provider
        let records = (0..<settings.rows).map { index in
            ImportRecord(
                client: "import-\(index)", provider: provider,
                tokens: benchTokens())
        }
        let rawBatches = RawConnection.importBatches(
            clientPrefix: "import-", provider: provider, rows: settings.rows, sizes: sizes, keyID: keyring.current.id)
        let rows = settings.rows
        let result = try await alternate(
            name: "import", connections: 1, target: 0.80,
            prepare: { _ in try await raw.execute("TRUNCATE oauth_tokens") },
            vault: { _ in
                try await vault.importTokens(records)
                return rows
            },
            baseline: { _ in
                try await raw.importRows(rawBatches)
                return rows
            })
        try await raw.execute("TRUNCATE oauth_tokens")
        await vault.shutdown()
        return result
    }

    /// Re-sealing `rows` rows against one UPDATE rewriting the same columns with random bytes.
    private func rotate() async throws -> (BenchResult, Double) {
        let raw = try await rawConnections(1)[0]
        let rows = settings.rows
        var keys = [VaultKey.generate()]
        var lastVaultSeconds = 0.0
        try await raw.execute("TRUNCATE oauth_tokens")
        let seeding = try vault(connections: 1, keyring: try Keyring(current: keys[0]))
        var start = 0
        while start < rows {
            try checkStop()
            let records = (start..<min(rows, start + 5000)).map { index in
                ImportRecord(
                    client: "rotate-\(index)", provider: provider,
                    tokens: TokenSet(
                        accessToken: Secret(accessToken), refreshToken: Secret(refreshToken),
                        expiresAt: Date().addingTimeInterval(3600)))
            }
            try await seeding.importTokens(records)
            start += 5000
        }
        await seeding.shutdown()
        let random = { (column: String, bytes: Int) in
            "\(column) = substring(decode(repeat(md5(random()::text), \((bytes + 15) / 16)), 'hex') from 1 for \(bytes))"
        }
        let update = """
            UPDATE oauth_tokens SET \(random("access_token_ciphertext", sizes.access)), \(random("access_token_nonce", 24)),
                \(random("refresh_token_ciphertext", sizes.refresh)), \(random("refresh_token_nonce", 24)),
                version = version + 1
            """
        // The next turn's rotating vault, made and connected in `prepare`, outside the timed turn, as the
        // baseline's connection is.
        var rotating: (vault: Vault, key: VaultKey)?
        // The last turn's rotating vault, shut down untimed in the next `prepare` (or at the end).
        var retired: Vault?
        let result = try await alternate(
            name: "rotate", connections: 1, target: 0.50,
            prepare: { vaultSide in
                await retired?.shutdown()
                retired = nil
                if vaultSide {
                    try await raw.execute("VACUUM ANALYZE oauth_tokens")
                    let next = VaultKey.generate()
                    let nextVault = try vault(
                        connections: 1, keyring: try Keyring(current: next, previous: [keys.last!]))
                    _ = try await nextVault.migrate()
                    rotating = (nextVault, next)
                } else {
                    // On a copy, so that the vault's rows stay openable for the next round.
                    try await raw.execute(
                        "DROP TABLE IF EXISTS rotate_baseline; "
                            + "CREATE TABLE rotate_baseline (LIKE oauth_tokens INCLUDING ALL); "
                            + "INSERT INTO rotate_baseline SELECT * FROM oauth_tokens")
                    try await raw.execute("VACUUM ANALYZE rotate_baseline")
                }
            },
            vault: { _ in
                guard let (vault, next) = rotating else { preconditionFailure("prepare makes the rotating vault") }
                rotating = nil
                let started = Date()
                let report = try await vault.rotateKeys(batchSize: 1000)
                lastVaultSeconds = Date().timeIntervalSince(started)
                retired = vault
                guard report.resealed == rows, report.remaining == 0 else {
                    throw VaultError(.database, "bench rotation re-sealed \(report.resealed) of \(rows) rows")
                }
                keys.append(next)
                return rows
            },
            baseline: { _ in
                try await raw.execute(
                    update.replacingOccurrences(of: "UPDATE oauth_tokens", with: "UPDATE rotate_baseline"))
                return rows
            })
        await retired?.shutdown()
        try await raw.execute("DROP TABLE IF EXISTS rotate_baseline; TRUNCATE oauth_tokens")
        return (result, lastVaultSeconds)
    }

    private func stampede(keyring: Keyring) async throws -> StampedeResult {
        let endpoint = try FakeTokenEndpoint.start(rotation: .rotating)
        defer { endpoint.stop() }
        endpoint.addRefreshToken("rt-bench-stampede")
        let vault = try vault(
            connections: 4, keyring: keyring,
            providers: [
                .zoho(
                    provider, clientID: endpoint.clientID, clientSecret: Secret(endpoint.clientSecret),
                    accountsURL: endpoint.baseURL)
            ])
        try await vault.store(
            TokenSet(
                accessToken: Secret("expired"), refreshToken: Secret("rt-bench-stampede"),
                expiresAt: Date(timeIntervalSinceNow: -60)),
            client: "stampede", provider: provider)
        let started = Date()
        let provider = self.provider
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<settings.callers {
                group.addTask { try await vault.accessToken(client: "stampede", provider: provider).value.reveal() }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        let seconds = Date().timeIntervalSince(started)
        await vault.shutdown()
        return StampedeResult(
            callers: settings.callers, endpointCalls: endpoint.requestCount, distinctTokens: tokens.count,
            seconds: seconds)
    }

    private func rawConnections(_ count: Int) async throws -> [RawConnection] {
        var connections: [RawConnection] = []
        for _ in 0..<count {
            connections.append(try await RawConnection.connect(url: settings.databaseURL, schema: schema))
        }
        return connections
    }

    /// Runs `body` in batches of `batch` operations until `seconds` have passed; returns the operations done.
    static func timed(_ seconds: Double, batch: Int, _ body: () throws -> Void) rethrows -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        var count = 0
        repeat {
            try body()
            count += batch
        } while Date() < deadline
        return count
    }

    /// `workers` tasks calling `body(worker, index)` until `seconds` have passed; returns the calls made.
    static func concurrently(
        _ workers: Int, seconds: Double, _ body: @escaping @Sendable (Int, Int) async throws -> Void
    ) async throws -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var index = 0
                    while Date() < deadline {
                        try await body(worker, index)
                        index += 1
                    }
                    return index
                }
            }
            return try await group.reduce(0, +)
        }
    }
}
