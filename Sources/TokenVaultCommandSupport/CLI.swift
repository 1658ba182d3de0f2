import ArgumentParser
import CProcess
import Foundation
import Logging
import TokenVault

#if canImport(Glibc)
import Glibc
#endif

/// Shared plumbing: logging, configuration from the environment, error reporting and exit codes.
package enum CLI {
    /// Logs go to stderr. The default, `critical`, keeps errors to the one `token-vault: error:` line; set
    /// TOKEN_VAULT_LOG_LEVEL=notice (or lower) for an audit trail of key use, rotations and refreshes.
    package static let bootstrapLogging: Void = {
        let levelName = ProcessInfo.processInfo.environment["TOKEN_VAULT_LOG_LEVEL"].flatMap { $0.isEmpty ? nil : $0 }
        var level = Logger.Level.critical
        if let levelName {
            guard let parsed = Logger.Level(rawValue: levelName.lowercased()) else {
                let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                FileHandle.standardError.write(
                    Data(
                        "token-vault: error: TOKEN_VAULT_LOG_LEVEL must be one of \(names), not '\(levelName)'.\n".utf8)
                )
                exit(64)
            }
            level = parsed
        }
        let chosen = level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = chosen
            return handler
        }
    }()

    package static var logger: Logger {
        _ = bootstrapLogging
        return Logger(label: "token-vault")
    }

    /// The CLI holds keys, tokens and client secrets: no core file may hold them, and no other process of the same
    /// user may read its memory (ptrace, /proc/PID/mem). Turns core dumps off (RLIMIT_CORE 0) and, on Linux, marks
    /// the process not dumpable (PR_SET_DUMPABLE 0). A failure is not fatal: the command runs as it would have.
    package static func hardenProcess() {
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        _ = setrlimit(Int32(RLIMIT_CORE.rawValue), &none)
        _ = token_vault_disable_dumping()
    }

    /// Builds a vault from the environment, runs `body`, shuts the vault down, and turns errors into one line
    /// on stderr and a documented exit code.
    /// - Parameter needsKeys: false for commands that never open or seal (migrate, list, delete, status): they
    ///   run without a configured key (a throwaway one stands in), but a malformed key is still refused.
    /// - Parameter hints: what to tell the operator for an error code, in place of ``hint(for:)``'s.
    /// - Parameter keys: keys already loaded with ``loadKeys(_:)``, so that key commands run once; nil: loaded here.
    package static func withVault<T>(
        needsKeys: Bool = true, hints: [VaultError.Code: String] = [:], keys: Keyring.Loaded? = nil,
        _ body: (Vault) async throws -> T
    ) async throws -> T {
        let vault: Vault
        do {
            var environment = ProcessInfo.processInfo.environment
            let keyless = [Keyring.Variable.key, Keyring.Variable.keyFile, Keyring.Variable.keyCommand].allSatisfy {
                (environment[$0] ?? "").isEmpty
            }
            if !needsKeys && keyless {
                environment[Keyring.Variable.key] = VaultKey.generate().exportBase64()
            }
            let keyring = try keys?.keyring ?? loadKeys(environment).keyring
            vault = try Vault(
                configuration: VaultConfiguration.fromEnvironment(environment, keyring: keyring), logger: logger)
        } catch {
            throw fail(error, hints: hints)
        }
        do {
            let result = try await body(vault)
            await vault.shutdown()
            return result
        } catch {
            await vault.shutdown()
            throw fail(error, hints: hints)
        }
    }

    /// The keyring from the environment, key commands run (``KeyCommand``), with where each key came from.
    package static func loadKeys(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(VaultError) -> Keyring.Loaded {
        try Keyring.load(
            fromEnvironment: environment, runningCommandsWith: try KeyCommand.runner(environment: environment))
    }

    /// A warning on stderr for each previous key that no row uses any more (`keys`, `verify`).
    package static func warnRetirable(_ ids: [KeyID]) {
        for id in ids {
            FileHandle.standardError.write(
                Data(
                    ("token-vault: warning: previous key \(id) holds no row any more and can be retired: remove it "
                        + "from the previous keys once `token-vault verify` passes with the current key.\n").utf8))
        }
    }

    /// Prints `error` as one line on stderr, with the CLI's hint for its code, and returns the exit code to throw.
    /// The library's message says what happened in the library's terms; the hint says what to do in the CLI's
    /// (environment variables, commands).
    package static func fail(_ error: any Error, hints: [VaultError.Code: String] = [:]) -> ExitCode {
        if let code = error as? ExitCode { return code }
        let message: String
        let code: Int32
        if let error = error as? VaultError {
            message = [error.description, hints[error.code] ?? hint(for: error)].compactMap { $0 }
                .joined(separator: " ")
            code = exitCode(for: error.code)
        } else {
            message = "\(error)"
            code = 70
        }
        FileHandle.standardError.write(Data("token-vault: error: \(printable(message))\n".utf8))
        return ExitCode(code)
    }

    /// What an operator of the CLI can do about `error`, chosen by its code, or nil when the message says it all.
    package static func hint(for error: VaultError) -> String? {
        switch error.code {
        case .keyConfiguration:
            return "Keys come from TOKEN_VAULT_KEY_FILE, TOKEN_VAULT_KEY_COMMAND or TOKEN_VAULT_KEY (exactly one) "
                + "and, for older keys, TOKEN_VAULT_PREVIOUS_KEYS(_FILE, _COMMAND); `token-vault keygen` makes one "
                + "(Keys/README.md)."
        case .unknownKey:
            return "The CLI's previous keys come from TOKEN_VAULT_PREVIOUS_KEYS or TOKEN_VAULT_PREVIOUS_KEYS_FILE (or "
                + "restore the key as the current one); then run the command again."
        case .notFound:
            return "Store tokens with `token-vault put --client … --provider …` (a token response on stdin) or "
                + "`token-vault exchange` (a Zoho grant code); a single-account Zoho deployment may set "
                + "ZOHO_REFRESH_TOKEN instead."
        case .tokenExpired:
            return "`token-vault token` refreshes it; or store fresh tokens with `token-vault put`."
        case .needsReauthorization:
            return "Store new tokens with `token-vault exchange` or `token-vault put`."
        case .database where error.sqlState == "26000" || error.sqlState == "42P05":
            return "Behind a connection pooler in transaction mode (PgBouncer, RDS Proxy), set "
                + "TOKEN_VAULT_PREPARED_STATEMENTS=off."
        case .databaseConfiguration:
            return "Check DATABASE_URL."
        case .connectionFailed:
            return "Check DATABASE_URL (or the PG* variables)."
        case .timedOut where error.message.hasPrefix(PGConnection.noAnswerMessage):
            return "Check that the database server is running and reachable; TOKEN_VAULT_STATEMENT_TIMEOUT sets the "
                + "limit."
        case .schemaOutdated where error.sqlState == "42703":
            return "docs/key-rotation.md, 'Migrating from a plaintext table', shows how with `token-vault import`."
        case .schemaOutdated:
            return "Run `token-vault migrate` first."
        case .unknownProvider:
            return "The CLI configures zoho_crm and zoho_calendar from ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET (and "
                + "ZOHO_DATA_CENTER), and any other provider from the JSON file TOKEN_VAULT_PROVIDERS_FILE names "
                + "(docs/connecting.md)."
        case .providerConfiguration where error.message.contains("the providers file"):
            return "The format of TOKEN_VAULT_PROVIDERS_FILE is in docs/connecting.md."
        case .providerConfiguration:
            return "The CLI takes them from ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_DATA_CENTER (or "
                + "ZOHO_ACCOUNTS_URL), or from TOKEN_VAULT_PROVIDERS_FILE for other providers."
        case .authorizationStateUnknown, .authorizationStateExpired, .authorizationStateReplayed,
            .authorizationStateMismatch, .authorizationDenied, .authorizationCodeRefused:
            return "Run `token-vault authorize` again and pipe the new callback into `token-vault callback` within "
                + "its lifetime."
        case .accountsServerRefused:
            return "Only Zoho's accounts servers, or those set in ZOHO_ACCOUNTS_URL and ZOHO_ACCOUNTS_URL_<DC>, are "
                + "accepted."
        case .revocationFailed:
            return "The tokens were kept. Run `token-vault delete --revoke` again later, or add --force to delete "
                + "them anyway."
        default:
            return nil
        }
    }

    package static func exitCode(for code: VaultError.Code) -> Int32 {
        switch code {
        case .invalidInput, .authenticationFailed, .malformedCiphertext: return 65
        case .notFound: return 66
        case .connectionFailed, .providerError: return 69
        case .tokenExpired, .rateLimited, .timedOut, .conflict: return 75
        case .needsReauthorization, .authorizationDenied, .authorizationCodeRefused: return 77
        case .authorizationStateUnknown, .authorizationStateExpired, .authorizationStateReplayed,
            .authorizationStateMismatch, .accountsServerRefused:
            return 65
        case .revocationFailed: return 69
        case .keyConfiguration, .unknownKey, .schemaOutdated, .unknownProvider, .providerConfiguration,
            .databaseConfiguration:
            return 78
        case .cancelled: return 130
        default: return 70
        }
    }

    /// All of standard input, for token responses (secrets never travel in arguments), up to `limit` bytes.
    /// - Throws: an `.invalidInput` `VaultError` when there is more; nothing beyond `limit` + 1 bytes is read.
    package static func readStandardInput(limit: Int = TokenResponse.maximumBytes) throws(VaultError) -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count <= limit {
            let chunk = FileHandle.standardInput.readData(ofLength: min(65_536, limit + 1 - bytes.count))
            if chunk.isEmpty { return bytes }
            bytes.append(contentsOf: chunk)
        }
        throw VaultError(
            .invalidInput, "standard input holds more than \(limit) bytes; a token response is far smaller.")
    }

    package static func printJSON(_ value: some Encodable) throws {
        print(String(decoding: try jsonEncoder().encode(value), as: UTF8.self))
    }

    /// How every command writes JSON: sorted keys, pretty-printed, ISO 8601 dates.
    package static func jsonEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// A note on stderr naming (never showing) the fields of token responses that were not stored, when any.
    package static func noteDroppedFields(_ names: some Sequence<String>) {
        let sorted = Set(names).sorted()
        guard !sorted.isEmpty else { return }
        let kept = TokenResponse.defaultMetadataFields.sorted().joined(separator: ", ")
        FileHandle.standardError.write(
            Data(
                ("token-vault: note: not stored (metadata keeps only \(kept), in plaintext): "
                    + "\(printable(sorted.joined(separator: ", "))).\n").utf8))
    }

    /// `text` safe to print on a terminal: control characters (C0, DEL, C1), line separators and the bidirectional
    /// overrides and isolates that can make a line read differently than it is (U+202E …) are shown as `\u{XXXX}`,
    /// and a backslash as `\\`. Client ids
    /// and providers are any text a caller stored; a terminal must not interpret them.
    package static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { isUnsafeOnTerminal($0) || $0 == "\\" }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar == "\\" {
                out += "\\\\"  // so that a literal "\u{202E}" cannot pass for an escaped character
            } else if isUnsafeOnTerminal(scalar) {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func isUnsafeOnTerminal(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true  // C0, DEL, C1
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidirectional controls
        case 0x2028, 0x2029: return true  // line and paragraph separators
        default: return false
        }
    }

    /// "1 row", "2 rows".
    package static func rows(_ count: Int) -> String { "\(count) row\(count == 1 ? "" : "s")" }

    package static func iso8601(_ date: Date?) -> String {
        guard let date else { return "-" }
        return date.formatted(.iso8601)
    }
}
