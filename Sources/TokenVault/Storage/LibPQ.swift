internal import CLibPQ
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A bound query parameter. Bytes go to the server in binary, everything else as text.
package enum SQLValue: Sendable {
    case text(String)
    case bytes([UInt8])
    case null
    /// A `bigint` sent in binary, for a parameter the statement casts as `$n::bigint`: no text to make or parse.
    case int8(Int64)
    /// An `integer` sent in binary, for a parameter the statement casts as `$n::integer`.
    case int4(Int32)

    /// The bytes this value takes in the parameters' buffer.
    fileprivate var storedCount: Int {
        switch self {
        case .null: 0
        case .text(let string): string.utf8.count + 1
        case .bytes(let bytes): bytes.count + 1
        case .int8: 8
        case .int4: 4
        }
    }
}

/// The only place that calls into libpq: one connection, used by one thread at a time.
///
/// Blocking calls are made only from the connection's own dispatch queue (see `PooledConnection`), never from
/// Swift's cooperative thread pool.
package final class PGConnection {
    private let handle: OpaquePointer
    private var prepared: Set<String> = []
    /// The longest a statement may go unanswered (see `roundTrip`).
    private let statementTimeout: Double
    /// Set when a statement went unanswered past `statementTimeout`: the connection is then given up.
    private var abandoned = false
    /// Named or unnamed statements; shared by the pool's connections.
    private let statements: StatementMode

    /// Connects with `conninfo` (a `postgresql://` URL or `key=value` pairs; empty means libpq's `PG*` variables
    /// and defaults). The conninfo never appears in an error: it may hold a password.
    /// `statementTimeout` bounds, in seconds, how long each statement may wait for the server's answer.
    init(
        conninfo: String, applicationName: String, schema: String? = nil,
        statementTimeout: Double = PGConnection.defaultStatementTimeout,
        statements: StatementMode = StatementMode(prepared: true)
    ) throws(VaultError) {
        self.statementTimeout = statementTimeout
        // Parse first: libpq's parse errors quote the offending text, which may be part of a password.
        var parseError: UnsafeMutablePointer<CChar>? = nil
        var given: Set<String> = []  // the keywords the conninfo sets (names only; values may be secret)
        if let options = PQconninfoParse(conninfo, &parseError) {
            var option = options
            while let keyword = option.pointee.keyword {
                if option.pointee.val != nil { given.insert(String(cString: keyword)) }
                option += 1
            }
            PQconninfoFree(options)
        } else {
            // The parse errors that are safe to repeat: an unknown option names a keyword, never a value.
            var unknownOption = ""
            if let parseError {
                let message = String(cString: parseError)
                PQfreemem(parseError)
                for prefix in ["invalid connection option \"", "invalid URI query parameter: \""]
                where message.hasPrefix(prefix) {
                    let name = message.dropFirst(prefix.count).prefix { $0 != "\"" }
                    if !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0 == "_") }) {
                        unknownOption = " (libpq has no option '\(name)')"
                    }
                }
            }
            throw VaultError(
                .databaseConfiguration,
                "the database connection string is not valid\(unknownOption): use postgresql://user:password@host:5432/dbname "
                    + "(percent-encode special characters in the password, e.g. % as %25) or key=value pairs "
                    + "(quote values with spaces: password='a b').")
        }
        // Defaults for what the settings leave unset: a bounded connection attempt (libpq waits forever by default)
        // and TCP keepalives, so that a dead peer is noticed. Not with a service file (`service`, PGSERVICE): its
        // values fill only what is still unset, so a default here would override them.
        var keywords = ["fallback_application_name"]
        var values = [applicationName]
        if !given.contains("service") && getenv("PGSERVICE") == nil {
            if !given.contains("connect_timeout") && getenv("PGCONNECT_TIMEOUT") == nil {
                keywords.append("connect_timeout")
                values.append(String(Self.defaultConnectTimeout))
            }
            for (keyword, value) in Self.defaultKeepalives where !given.contains(keyword) {
                keywords.append(keyword)
                values.append(value)
            }
        }
        keywords.append("dbname")
        values.append(conninfo)
        // After it, what the vault relies on: UTF-8 text, whatever PGCLIENTENCODING or the database's default says
        // (ids are sealed as UTF-8 bytes; a row stored transcoded would never open again).
        keywords.append("client_encoding")
        values.append("UTF8")
        if let schema {
            // After dbname, so that it wins over any options in the URL; the name is validated by the caller.
            keywords.append("options")
            values.append("-c search_path=\(schema)")
        }
        let connection: OpaquePointer? = withCStringArray(keywords) { keys in
            withCStringArray(values) { vals in PQconnectdbParams(keys, vals, 1) }
        }
        guard let connection else {
            throw VaultError(.connectionFailed, "libpq could not allocate a connection (out of memory).")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let reason = Self.cleanMessage(PQerrorMessage(connection))
            PQfinish(connection)
            if let schema, reason.contains("unsupported startup parameter: options") {
                throw Self.schemaRefused(schema, reason)
            }
            if Self.isRefusedSetting(reason) {
                // The server answered and refused these settings: trying again will not help.
                throw VaultError(
                    .databaseConfiguration,
                    "PostgreSQL refused the connection settings: \(reason). Correct them (user, password, database, "
                        + "TLS: sslmode, sslrootcert) and try again.")
            }
            throw VaultError(
                .connectionFailed,
                "cannot connect to PostgreSQL: \(reason). Check the connection settings and that the server is "
                    + "running and reachable.")
        }
        handle = connection
        self.statements = statements
        PQsetNoticeProcessor(handle, { _, _ in }, nil)  // Notices (e.g. "relation exists, skipping") are not ours.
        // Sending never blocks either (a large batch to a server that stopped reading), nor does closing.
        PQsetnonblocking(handle, 1)
        if let schema { try checkSearchPath(schema) }
    }

    deinit {
        PQfinish(handle)
    }

    /// Seconds libpq may take to connect to one host when neither the conninfo nor `PGCONNECT_TIMEOUT` says.
    static let defaultConnectTimeout = 10

    /// TCP keepalives unless the conninfo sets them: a peer that vanished is noticed after about a minute.
    static let defaultKeepalives = [
        ("keepalives", "1"), ("keepalives_idle", "30"), ("keepalives_interval", "10"), ("keepalives_count", "3"),
    ]

    /// Seconds a statement may wait for the server's answer when the configuration does not say.
    package static let defaultStatementTimeout: Double = 30

    /// What the connection is using, for `doctor`: host (or socket directory), port, `sslmode`, and whether TLS is
    /// in use. Never the password or any other option.
    package struct Endpoint: Sendable {
        package let host: String
        package let port: String
        package let sslMode: String
        package let tlsInUse: Bool

        package init(host: String, port: String, sslMode: String, tlsInUse: Bool) {
            self.host = host
            self.port = port
            self.sslMode = sslMode
            self.tlsInUse = tlsInUse
        }
    }

    /// This connection's ``Endpoint``.
    package var endpoint: Endpoint {
        var sslMode = ""
        if let options = PQconninfo(handle) {
            var option = options
            while let keyword = option.pointee.keyword {
                if String(cString: keyword) == "sslmode", let value = option.pointee.val {
                    sslMode = String(cString: value)
                }
                option += 1
            }
            PQconninfoFree(options)
        }
        return Endpoint(
            host: PQhost(handle).map { String(cString: $0) } ?? "",
            port: PQport(handle).map { String(cString: $0) } ?? "",
            sslMode: sslMode, tlsInUse: PQsslInUse(handle) == 1)
    }

    /// True when libpq has noticed the connection is gone, or a statement went unanswered; such a connection is
    /// discarded, not reused.
    var isBroken: Bool { abandoned || PQstatus(handle) != CONNECTION_OK }

    /// Runs one or more statements without parameters (simple query protocol), for migrations and transactions.
    package func execute(script sql: String) throws(VaultError) {
        _ = try roundTrip(sql) { PQsendQuery(handle, sql) }
    }

    /// Runs a statement with bound parameters; results come back in binary.
    func query(_ sql: String, _ parameters: [SQLValue] = []) throws(VaultError) -> PGResult {
        try roundTrip(sql) { () throws(VaultError) in
            try withParameters(parameters) { count, values, lengths, formats in
                PQsendQueryParams(handle, sql, count, nil, values, lengths, formats, 1)
            }
        }
    }

    /// Runs a statement without parameters and returns every cell as text, for tooling and tests.
    package func queryText(_ sql: String) throws(VaultError) -> [[String?]] {
        let result = try roundTrip(sql) { PQsendQueryParams(handle, sql, 0, nil, nil, nil, nil, 0) }
        return (0..<result.rowCount).map { row in
            (0..<result.columnCount).map { result.string(row, $0) }
        }
    }

    /// Runs one of the vault's statements: named (``queryNamed(_:_:)``), or unnamed (``query(_:_:)``) when the
    /// pool's ``StatementMode`` says so, which it does from the start or once a pooler is detected.
    package func query(prepared statement: PreparedStatement, _ parameters: [SQLValue]) throws(VaultError) -> PGResult {
        guard statements.usesNamedStatements else { return try query(statement.sql, parameters) }
        do {
            return try queryNamed(statement, parameters)
        } catch {
            // A transaction-mode pooler put us on a server connection that lacks the statement or has one of that
            // name: it did not run, so outside a transaction it is safe to send again (see StatementMode).
            try statements.recover(from: error, inTransaction: PQtransactionStatus(handle) != PQTRANS_IDLE)
            return try query(statement.sql, parameters)
        }
    }

    /// Runs a named prepared statement, preparing it on this connection the first time.
    private func queryNamed(_ statement: PreparedStatement, _ parameters: [SQLValue]) throws(VaultError) -> PGResult {
        if !prepared.contains(statement.name) {
            _ = try roundTrip("PREPARE") { PQsendPrepare(handle, statement.name, statement.sql, 0, nil) }
            prepared.insert(statement.name)
        }
        return try roundTrip(statement.sql) { () throws(VaultError) in
            try withParameters(parameters) { count, values, lengths, formats in
                PQsendQueryPrepared(handle, statement.name, count, values, lengths, formats, 1)
            }
        }
    }

    /// A pooler told to ignore the `options` startup parameter (PgBouncer's `ignore_startup_parameters`) drops the
    /// schema silently: refuse a connection whose `search_path` is not the schema.
    private func checkSearchPath(_ schema: String) throws(VaultError) {
        let path = try queryText("SELECT current_setting('search_path')").first?.first ?? nil
        guard path == schema else { throw Self.schemaRefused(schema, nil) }
    }

    private static func schemaRefused(_ schema: String, _ reason: String?) -> VaultError {
        VaultError(
            .databaseConfiguration,
            "the vault's schema '\(schema)' is set with the connection's options parameter (-c search_path), which "
                + "\(reason.map { "was refused (\($0))" } ?? "did not take effect"): a connection pooler such as "
                + "PgBouncer does not pass it on. Leave VaultConfiguration.schema unset and set the search_path for the "
                + "vault's role instead (ALTER ROLE … SET search_path = \(schema)), or give the vault a database of "
                + "its own.")
    }

    private func check(_ result: OpaquePointer?) throws(VaultError) -> PGResult {
        guard let result else {
            throw VaultError(
                .connectionFailed,
                "lost the connection to PostgreSQL: \(Self.cleanMessage(PQerrorMessage(handle))).")
        }
        let status = PQresultStatus(result)
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK {
            return PGResult(result)
        }
        let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        let primary =
            PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
            ?? Self.cleanMessage(PQerrorMessage(handle))
        PQclear(result)
        if isBroken || sqlState.map(Self.isConnectionLoss) == true {
            throw VaultError(
                .connectionFailed, "lost the connection to PostgreSQL: \(primary).", sqlState: sqlState)
        }
        if sqlState == "42703" && primary.contains("_ciphertext") {
            throw VaultError(
                .schemaOutdated,
                "the table oauth_tokens has no sealed columns (\(primary)): it looks like an older plaintext token "
                    + "table. Rename it, create the vault's table with migrate(), and import its rows with "
                    + "importTokens(_:).",
                sqlState: sqlState)
        }
        if sqlState == "42P01" {
            throw VaultError(
                .schemaOutdated, "the vault's tables do not exist: \(primary). Create them with migrate() first.",
                sqlState: sqlState)
        }
        throw VaultError(.database, "PostgreSQL refused the statement: \(primary).", sqlState: sqlState)
    }

    /// Class 08 (connection exception), 57P01..57P03 (server shutting down or starting).
    private static func isConnectionLoss(_ state: String) -> Bool {
        state.hasPrefix("08") || state == "57P01" || state == "57P02" || state == "57P03"
    }

    /// Whether libpq's connection failure is the server (or its certificate) refusing the settings, which no
    /// retry can fix, rather than the server being unreachable or failing. libpq gives no SQLSTATE for a failed
    /// connection, so this reads its message, in English: with a translated `lc_messages` (server) or `LANG`
    /// (libpq), or a message not listed here, the failure counts as unreachable.
    static func isRefusedSetting(_ reason: String) -> Bool {
        let refusals = [
            "password authentication failed", "no password supplied", "no pg_hba.conf entry", "does not exist",
            "certificate verify failed", "does not match host name", "root certificate file",
            "server does not support ssl",
            "authentication failed", "not permitted to log in", "permission denied for database",
        ]
        let lower = reason.lowercased()
        return refusals.contains { lower.contains($0) }
    }

    /// libpq's message on one line, to sit inside a sentence of ours: without its tab-indented hint ("Is the server
    /// running …?", which our own advice replaces), its double spaces ("FATAL:  …") or a final full stop.
    private static func cleanMessage(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown error" }
        let text = String(cString: message)
        let lines = text.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("\t") }.map { line in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        }
        var joined = lines.filter { !$0.isEmpty }.joined(separator: "; ")
        while joined.last == "." { joined.removeLast() }
        return joined.isEmpty ? "unknown error" : joined
    }

    private func withParameters<R>(
        _ parameters: [SQLValue],
        _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
    ) throws(VaultError) -> R {
        // Copy every value into one buffer that outlives the call; pointers into it are handed to libpq.
        var storage: [UInt8] = []
        storage.reserveCapacity(parameters.reduce(0) { $0 + $1.storedCount })
        var offsets: [Int?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        offsets.reserveCapacity(parameters.count)
        lengths.reserveCapacity(parameters.count)
        formats.reserveCapacity(parameters.count)
        defer { storage.withUnsafeMutableBytes { Sodium.zero($0) } }  // may have held ciphertext; keep it tidy
        for parameter in parameters {
            switch parameter {
            case .null:
                offsets.append(nil)
                lengths.append(0)
                formats.append(0)
            case .text(let string):
                let start = storage.count
                offsets.append(start)
                storage.append(contentsOf: string.utf8)
                // libpq reads a text value up to its first NUL: PostgreSQL would store it cut short, silently.
                // The vault refuses such input where it enters; this is the backstop.
                let hasNUL = storage.withUnsafeBytes { bytes in
                    bytes.count > start && memchr(bytes.baseAddress! + start, 0, bytes.count - start) != nil
                }
                if hasNUL {
                    throw VaultError(
                        .invalidInput,
                        "a text value holds a NUL character (U+0000), which PostgreSQL cannot store; nothing was "
                            + "sent.")
                }
                storage.append(0)
                lengths.append(0)
                formats.append(0)
            case .bytes(let bytes):
                offsets.append(storage.count)
                storage.append(contentsOf: bytes)
                storage.append(0)
                lengths.append(Int32(bytes.count))
                formats.append(1)
            case .int8(let value):
                offsets.append(storage.count)
                withUnsafeBytes(of: value.bigEndian) { storage.append(contentsOf: $0) }
                lengths.append(8)
                formats.append(1)
            case .int4(let value):
                offsets.append(storage.count)
                withUnsafeBytes(of: value.bigEndian) { storage.append(contentsOf: $0) }
                lengths.append(4)
                formats.append(1)
            }
        }
        return storage.withUnsafeBytes { raw in
            let base = raw.baseAddress?.assumingMemoryBound(to: CChar.self)
            let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
                guard let offset, let base else { return nil }
                return UnsafePointer(base + offset)
            }
            return pointers.withUnsafeBufferPointer { values in
                lengths.withUnsafeBufferPointer { lengthPointer in
                    formats.withUnsafeBufferPointer { formatPointer in
                        body(
                            Int32(parameters.count), values.baseAddress, lengthPointer.baseAddress,
                            formatPointer.baseAddress)
                    }
                }
            }
        }
    }
}

// MARK: - Statements bounded in time

extension PGConnection {
    /// The start of the message of a statement that went unanswered, for callers that tell it apart.
    package static let noAnswerMessage = "PostgreSQL did not answer within"

    /// Sends one statement with `send` (a `PQsend…` call) and returns its result (the first error of a script, else
    /// its last result), waiting at most `statementTimeout` for the server. Every statement goes through here.
    ///
    /// libpq's blocking calls wait forever for a server that stopped answering while its kernel still acknowledges
    /// (a frozen process, some partitions), which keepalives cannot notice. So the connection is nonblocking and this
    /// waits on its socket with `poll` and a deadline. The fast path costs what libpq's own wait does (one `poll`,
    /// one read): the clock is read and `poll` runs only while libpq says the answer is not complete.
    private func roundTrip(_ sql: String, _ send: () throws(VaultError) -> Int32) throws(VaultError) -> PGResult {
        let transaction = PQtransactionStatus(handle)
        guard try send() == 1 else { return try check(nil) }
        var deadline: UInt64? = nil
        // What did not fit in the socket's buffer goes out as the server reads (reading what it sends meanwhile).
        while true {
            let flushed = PQflush(handle)
            if flushed == 0 { break }
            if flushed < 0 { return try lost() }
            guard waitForSocket(Int16(POLLIN | POLLOUT), deadline: &deadline) else {
                throw abandon(sql, startedIn: transaction)
            }
            if PQconsumeInput(handle) == 0 { return try lost() }
        }
        var kept: OpaquePointer? = nil
        while true {
            while PQisBusy(handle) == 1 {
                guard waitForSocket(Int16(POLLIN), deadline: &deadline) else {
                    if let kept { PQclear(kept) }
                    throw abandon(sql, startedIn: transaction)
                }
                if PQconsumeInput(handle) == 0 {
                    if let kept { PQclear(kept) }
                    return try lost()
                }
            }
            guard let next = PQgetResult(handle) else { break }
            if let previous = kept {
                if PQresultStatus(previous) == PGRES_FATAL_ERROR {
                    PQclear(next)
                    continue
                }
                PQclear(previous)
            }
            kept = next
        }
        return try check(kept)
    }

    /// The connection failed while sending or reading: reported as lost, and never used again.
    private func lost() throws(VaultError) -> PGResult {
        abandoned = true
        return try check(nil)
    }

    /// Waits until the socket is ready for `events`; false once the statement's deadline (set on the first wait)
    /// has passed. A failing `poll` returns true, so that libpq's next read reports the failure.
    private func waitForSocket(_ events: Int16, deadline: inout UInt64?) -> Bool {
        let end = deadline ?? Self.monotonicNanoseconds() + UInt64(statementTimeout * 1_000_000_000)
        deadline = end
        var descriptor = pollfd(fd: PQsocket(handle), events: events, revents: 0)
        while true {
            let now = Self.monotonicNanoseconds()
            guard now < end else { return false }
            let milliseconds = Int32(clamping: (end - now + 999_999) / 1_000_000)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready > 0 || (ready < 0 && errno != EINTR) { return true }
        }
    }

    /// Gives the connection up after `sql` went unanswered: asks the server to cancel the statement without
    /// waiting for it to agree (a frozen server would not), and marks the connection broken so that the pool closes
    /// it. The error says whether the statement can have changed anything.
    private func abandon(_ sql: String, startedIn transaction: PGTransactionStatusType) -> VaultError {
        abandoned = true
        if let cancel = PQgetCancel(handle) {
            let request = CancelRequest(cancel)
            Thread.detachNewThread { request.send() }
        }
        let verb = sql.drop { $0.isWhitespace }.prefix { $0.isLetter }.uppercased()
        let outcome: String
        if ["SELECT", "PREPARE", "BEGIN", "ROLLBACK"].contains(verb) {
            outcome = "It changed nothing."
        } else if transaction == PQTRANS_INTRANS && verb != "COMMIT" {
            outcome = "Its transaction was not committed: nothing it wrote was kept."
        } else {
            outcome = "Whether its write was applied is unknown: read the data back before relying on it."
        }
        let seconds = VaultError.seconds(statementTimeout)
        return VaultError(
            .timedOut,
            "\(Self.noAnswerMessage) \(seconds) (statementTimeout): the server may be frozen, overloaded or "
                + "unreachable. The connection was closed; the next call opens a new one. \(outcome)")
    }

    private static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

/// A request to cancel a statement that went unanswered, sent on a thread of its own. libpq before 17 has no
/// timeout for it: against a frozen server the thread waits until the server runs again (which then cancels the
/// statement, if its backend has not already seen the connection close), against a live one it returns at once.
/// @unchecked Sendable: the `PGcancel` is used by the one thread it is handed to, then freed.
private final class CancelRequest: @unchecked Sendable {
    private let handle: OpaquePointer

    init(_ handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        PQfreeCancel(handle)
    }

    func send() {
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(handle, &buffer, Int32(buffer.count))
    }
}

/// A statement prepared once per connection under its name and a hash of its SQL (see ``StatementMode``).
package struct PreparedStatement: Sendable {
    let name: String
    package let sql: String

    package init(name: String, sql: String) {
        self.name = Self.hashedName(name, sql: sql)
        self.sql = sql
    }
}

/// A query result in binary format; freed with `PQclear` when released.
/// @unchecked Sendable: libpq never changes a PGresult after it is made, so any thread may read it.
package final class PGResult: @unchecked Sendable {
    private let handle: OpaquePointer

    init(_ handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        PQclear(handle)
    }

    package var rowCount: Int { Int(PQntuples(handle)) }
    var columnCount: Int { Int(PQnfields(handle)) }

    /// The number of rows an INSERT, UPDATE or DELETE touched.
    var affectedRows: Int {
        guard let text = PQcmdTuples(handle) else { return 0 }
        return Int(String(cString: text)) ?? 0
    }

    func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(handle, Int32(row), Int32(column)) == 1
    }

    func withBytes<R>(_ row: Int, _ column: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        let value = PQgetvalue(handle, Int32(row), Int32(column))
        return body(UnsafeRawBufferPointer(start: value, count: length))
    }

    func bytes(_ row: Int, _ column: Int) -> [UInt8]? {
        isNull(row, column) ? nil : withBytes(row, column) { Array($0) }
    }

    /// text, varchar, and `::text` casts.
    func string(_ row: Int, _ column: Int) -> String? {
        isNull(row, column) ? nil : withBytes(row, column) { String(decoding: $0, as: UTF8.self) }
    }

    /// int8 / int4 / int2 in network byte order.
    func integer(_ row: Int, _ column: Int) -> Int64? {
        guard !isNull(row, column) else { return nil }
        return withBytes(row, column) { raw in
            raw.reduce(Int64(0)) { ($0 << 8) | Int64($1) }
                .signExtended(fromBytes: raw.count)
        }
    }

    func bool(_ row: Int, _ column: Int) -> Bool? {
        isNull(row, column) ? nil : withBytes(row, column) { $0.first == 1 }
    }

    /// timestamptz: microseconds since 2000-01-01 00:00:00 UTC, as seconds since 1970.
    func timestamp(_ row: Int, _ column: Int) -> Double? {
        guard let micros = integer(row, column) else { return nil }
        return 946_684_800 + Double(micros) / 1_000_000
    }
}

extension Int64 {
    fileprivate func signExtended(fromBytes count: Int) -> Int64 {
        guard count > 0 && count < 8 else { return self }
        let shift = Int64(64 - count * 8)
        return (self << shift) >> shift
    }
}

private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer {
        for pointer in pointers {
            if let pointer {
                // The conninfo may hold a password: wipe our copy (sodium_memzero, which the compiler cannot drop).
                Sodium.zero(UnsafeMutableRawBufferPointer(start: pointer, count: strlen(pointer)))
                free(pointer)
            }
        }
    }
    return pointers.withUnsafeBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}
