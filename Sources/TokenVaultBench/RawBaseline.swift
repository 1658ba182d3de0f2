import Foundation
import Synchronization
import TokenVault

/// Raw libsodium and libpq loops that `token-vault bench` measures the vault against: the same work without
/// the vault (no key derivation, no sealing, no pool). Not a stable API.
enum RawCrypto {
    /// `crypto_secretbox_easy` + `crypto_secretbox_open_easy` with a fresh random nonce, `iterations` times,
    /// on preallocated buffers, under one fixed key. Returns false if an open failed.
    static func sealOpenLoop(iterations: Int, messageSize: Int) -> Bool {
        var key = [UInt8](repeating: 0, count: Sodium.keyBytes)
        var message = [UInt8](repeating: 0, count: messageSize)
        var nonce = [UInt8](repeating: 0, count: Sodium.nonceBytes)
        var box = [UInt8](repeating: 0, count: messageSize + Sodium.macBytes)
        var opened = [UInt8](repeating: 0, count: messageSize)
        key.withUnsafeMutableBytes { Sodium.randomBytes($0) }
        message.withUnsafeMutableBytes { Sodium.randomBytes($0) }
        var ok = true
        key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                nonce.withUnsafeMutableBytes { nonceBytes in
                    box.withUnsafeMutableBytes { boxBytes in
                        opened.withUnsafeMutableBytes { openedBytes in
                            for _ in 0..<iterations {
                                Sodium.randomBytes(nonceBytes)
                                Sodium.secretboxSeal(
                                    into: boxBytes, message: messageBytes, nonce: UnsafeRawBufferPointer(nonceBytes),
                                    key: keyBytes)
                                ok =
                                    Sodium.secretboxOpen(
                                        into: openedBytes, ciphertext: UnsafeRawBufferPointer(boxBytes),
                                        nonce: UnsafeRawBufferPointer(nonceBytes), key: keyBytes) && ok
                            }
                        }
                    }
                }
            }
        }
        return ok
    }
}

/// One plain libpq connection running the vault's SQL with random bytes in place of sealed values.
final class RawConnection: Sendable {
    private let connection: PooledConnection

    private init(_ connection: PooledConnection) {
        self.connection = connection
    }

    static func connect(url: String, schema: String?) async throws(VaultError) -> RawConnection {
        RawConnection(
            try await PooledConnection.connect(
                conninfo: url, applicationName: "token-vault-bench", label: "token-vault.bench", schema: schema))
    }

    func execute(_ sql: String) async throws(VaultError) {
        try await connection.runTyped { (connection) throws(VaultError) in try connection.execute(script: sql) }
    }

    /// Random bytes of the sealed sizes for (client, provider), made once: a raw caller has its bytes already.
    /// `keyID` is the vault's current key id, so that both sides write the same `key_id` and neither turns the
    /// other's updates into non-HOT ones (`key_id` is indexed) by changing it on every row.
    static func randomRow(client: String, provider: String, sizes: SealedSizes, keyID: KeyID) -> RawRow {
        RawRow(
            row: SealedRow(
                clientID: client, provider: provider,
                accessToken: SealedValue(ciphertext: random(sizes.access), nonce: random(24)),
                refreshToken: SealedValue(ciphertext: random(sizes.refresh), nonce: random(24)),
                keyID: keyID, expiresAt: Date().timeIntervalSince1970 + 3600,
                scopes: "ZohoCRM.modules.ALL", metadataJSON: #"{"api_domain":"https://www.zohoapis.eu"}"#))
    }

    /// The vault's upsert statement with `rows`, in a blocking loop on the connection's thread, for `seconds`.
    /// Returns the number of statements.
    func upsertLoop(rows: [RawRow], seconds: Double) async throws(VaultError) -> Int {
        return try await loop(seconds: seconds) { (connection, index) throws(VaultError) in
            _ = try connection.query(
                prepared: Self.rawUpsert, TokenRepository.storeParameters(rows[index % rows.count].row))
        }
    }

    /// One upsert of `row`, handed to the connection's thread like any async libpq call must be. Its parameters
    /// are built before the hand-off, as `Vault.store` builds its own.
    func upsert(_ row: RawRow) async throws(VaultError) {
        let parameters = TokenRepository.storeParameters(row.row)
        try await connection.runTyped { (connection) throws(VaultError) in
            _ = try connection.query(prepared: Self.rawUpsert, parameters)
        }
    }

    /// One single-row SELECT, handed to the connection's thread; its columns are read into memory (byte
    /// arrays, strings, numbers), as any caller of the SELECT must, and nothing is opened.
    func select(client: String, provider: String) async throws(VaultError) {
        let row = try await connection.runTyped { (connection) throws(VaultError) in
            let result = try connection.query(prepared: Self.rawSelect, [.text(client), .text(provider)])
            precondition(result.rowCount == 1, "bench row missing")
            return SealedRow(result: result, row: 0)  // where the vault decodes too
        }
        Self.consume(row)
    }

    /// Keeps the optimizer from dropping a decoded row.
    @inline(never)
    static func consume(_ row: SealedRow) {
        precondition(row.refreshToken.ciphertext.count > 0, "bench row empty")
    }

    static let rawUpsert = PreparedStatement(name: "raw_upsert", sql: TokenRepository.upsert.sql)
    static let rawSelect = PreparedStatement(name: "raw_select", sql: TokenRepository.select.sql)

    /// The vault's single-row SELECT, read into memory, in a blocking loop, for `seconds`.
    func selectLoop(clients: [String], provider: String, seconds: Double) async throws(VaultError) -> Int {
        return try await loop(seconds: seconds) { (connection, index) throws(VaultError) in
            let result = try connection.query(
                prepared: Self.rawSelect, [.text(clients[index % clients.count]), .text(provider)])
            precondition(result.rowCount == 1, "bench row missing")
            Self.consume(SealedRow(result: result, row: 0))
        }
    }

    /// Rows of random bytes (one set shared by all: a raw caller has its bytes already) for `importRows`.
    /// Split into statements as the vault's import splits them.
    static func importBatches(
        clientPrefix: String, provider: String, rows: Int, sizes: SealedSizes, keyID: KeyID
    ) -> [RawBatch] {
        let template = randomRow(client: "", provider: provider, sizes: sizes, keyID: keyID).row
        return TokenRepository.importBatches(rows).map { range in
            RawBatch(
                keyID: keyID,
                rows: range.map { index in
                    var row = template
                    row.clientID = "\(clientPrefix)\(index)"
                    return row
                })
        }
    }

    /// The vault's batched import statements, one per batch, in one transaction, each batch's parameters
    /// encoded while the previous statement runs: the vault's import pipeline without the sealing.
    func importRows(_ batches: [RawBatch]) async throws(VaultError) {
        _ = try await TokenRepository.upsertBatches(on: connection, count: batches.count) { index in
            TokenRepository.upsertBatchParameters(batches[index].rows, keyID: batches[index].keyID)
        }
    }

    private func loop(
        seconds: Double, _ body: @escaping @Sendable (PGConnection, Int) throws(VaultError) -> Void
    )
        async throws(VaultError) -> Int
    {
        try await connection.runTyped { (connection) throws(VaultError) in
            let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1_000_000_000)
            var count = 0
            while DispatchTime.now().uptimeNanoseconds < deadline {
                try body(connection, count)
                count += 1
            }
            return count
        }
    }

    static func random(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { Sodium.randomBytes($0) }
        return bytes
    }
}

/// A row of random bytes in place of sealed values, for the raw baseline.
struct RawRow: Sendable {
    let row: SealedRow
}

/// Rows for one statement of the raw import baseline.
struct RawBatch: Sendable {
    let keyID: KeyID
    let rows: [SealedRow]
}

/// Stored sizes of the two ciphertext columns for given token lengths.
struct SealedSizes: Sendable {
    let access: Int
    let refresh: Int
    init(accessTokenLength: Int, refreshTokenLength: Int) {
        access = Sealer.overhead + accessTokenLength
        refresh = Sealer.overhead + refreshTokenLength
    }
}

/// The vault's own CPU work per call, without the database: the row is fetched once, then decoded and opened
/// (or sealed and turned into parameters) `iterations` times on this thread, for one row, so with warm caches
/// and its subkeys cached (a cache miss adds one BLAKE2b derivation per token). What `token-vault bench` reports as
/// the vault's cost per call, next to the round trip it rides on.
enum VaultWork {
    enum Kind: String, Sendable, CaseIterable {
        /// Decode the row and open both tokens, as `fetch` does.
        case get
        /// Decode the row and open the access token, as `accessToken` does on a valid token.
        case accessToken = "access_token"
        /// Seal both tokens and build the upsert's parameters, as `store` does.
        case put
        /// As `put`, plus the audit event: sealed into its chain (digest and MACs) and its parameters built, as an
        /// audited `store` does.
        case auditPut = "audit_put"
    }

    /// Nanoseconds per call of `kind` on the stored row of (client, provider).
    /// - Parameter beyondBaseline: leave out what the baseline does too: decoding the row (`get`,
    ///   `access_token`), building the statement's parameters (`put`). What is left is the vault's extra work.
    static func nanosecondsPerCall(
        _ kind: Kind, vault: Vault, tokens: TokenSet, client: String, provider: String, iterations: Int,
        beyondBaseline: Bool = false
    ) async throws(VaultError) -> Double {
        let result = try await vault.repository.pool.withConnection(idempotent: true) { connection in
            try connection.query(prepared: TokenRepository.select, [.text(client), .text(provider)])
        }
        guard result.rowCount == 1 else { throw Vault.notFound(client: client, provider: provider) }
        let decoded = SealedRow(result: result, row: 0)
        let started = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<iterations {
            switch kind {
            case .get:
                _ = try vault.open(beyondBaseline ? decoded : SealedRow(result: result, row: 0))
            case .accessToken:
                _ = try vault.openValidAccessToken(beyondBaseline ? decoded : SealedRow(result: result, row: 0))
            case .put:
                let sealed = try vault.sealer.sealRow(tokens, client: client, provider: provider)
                if !beyondBaseline { _ = TokenRepository.storeParameters(sealed) }
            case .auditPut:
                let sealed = try vault.sealer.sealRow(tokens, client: client, provider: provider)
                let record = vault.auditRecord(
                    .row(.stored, client: client, provider: provider, keyID: vault.auditSigner.currentKeyID),
                    after: .genesis)
                _ = TokenRepository.storeParameters(sealed) + TokenRepository.auditParameters(record)
            }
        }
        return Double(DispatchTime.now().uptimeNanoseconds - started) / Double(iterations)
    }
}

/// Pure CPU work of a chosen length: a dependent chain of xor-shift-multiply steps on one register, touching no
/// memory (the shift keeps the optimizer from folding several steps into one). What `token-vault bench
/// --calibrate` adds to the baseline's calls, to show what a given amount of work per call costs on this machine
/// when it is as cheap to run as work can be (no cache miss, no allocation, no system call), next to what the
/// vault's own work costs.
struct CPUBurn: Sendable {
    /// Loop iterations per nanosecond on this machine, measured when made.
    let iterationsPerNanosecond: Double

    /// Measures the loop's speed: the best of 7 runs of at least 2 ms.
    init() {
        var best = 0.0
        var iterations = 1 << 16
        for _ in 0..<7 {
            var elapsed = 0.0
            repeat {
                let started = DispatchTime.now().uptimeNanoseconds
                Self.spin(iterations)
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - started)
                // Bounded, in case a compiler ever made the loop cheaper than linear.
                if elapsed < 2_000_000 && iterations < 1 << 40 { iterations *= 2 } else { break }
            } while true
            best = max(best, Double(iterations) / max(elapsed, 1))
        }
        iterationsPerNanosecond = best
    }

    /// Runs the loop for about `nanoseconds` of CPU (less if the thread is descheduled mid-way: it counts work,
    /// not time).
    func burn(nanoseconds: Double) {
        Self.spin(Int((nanoseconds * iterationsPerNanosecond).rounded()))
    }

    @inline(never)
    static func spin(_ iterations: Int) {
        var value = state.load(ordering: .relaxed)
        for _ in 0..<iterations { value = (value ^ (value >> 29)) &* 0xBF58_476D_1CE4_E5B9 }
        state.store(value, ordering: .relaxed)
    }

    /// Read and written by `spin`, so that the optimizer can neither precompute the chain nor drop it.
    static let state = Atomic<UInt64>(0x9E37_79B9_7F4A_7C15)
}
