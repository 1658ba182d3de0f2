import ArgumentParser
import Foundation
import Logging
import TokenVault

/// Shared plumbing: logging, configuration from the environment, error reporting and exit codes.
enum Runner {
    static let bootstrapLogging: Void = {
        let levelName = ProcessInfo.processInfo.environment["TOKEN_VAULT_LOG_LEVEL"] ?? "warning"
        let level = Logger.Level(rawValue: levelName.lowercased()) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }()

    static var logger: Logger {
        _ = bootstrapLogging
        return Logger(label: "token-vault")
    }

    /// Builds a vault from the environment, runs `body`, shuts the vault down, and turns errors into one line
    /// on stderr and a documented exit code.
    static func withVault<T>(_ body: (Vault) async throws -> T) async throws -> T {
        let vault: Vault
        do {
            vault = Vault(configuration: try VaultConfiguration.fromEnvironment(), logger: logger)
        } catch {
            throw fail(error)
        }
        do {
            let result = try await body(vault)
            await vault.shutdown()
            return result
        } catch {
            await vault.shutdown()
            throw fail(error)
        }
    }

    /// Prints `error` as one line on stderr and returns the exit code to throw.
    static func fail(_ error: any Error) -> ExitCode {
        if let code = error as? ExitCode { return code }
        let message: String
        let code: Int32
        if let error = error as? VaultError {
            message = error.description
            code = exitCode(for: error.code)
        } else {
            message = "\(error)"
            code = 70
        }
        FileHandle.standardError.write(Data("token-vault: error: \(message)\n".utf8))
        return ExitCode(code)
    }

    static func exitCode(for code: VaultError.Code) -> Int32 {
        switch code {
        case .invalidInput, .authenticationFailed, .malformedCiphertext: return 65
        case .notFound: return 66
        case .connectionFailed, .providerError: return 69
        case .tokenExpired, .rateLimited, .timedOut, .conflict: return 75
        case .needsReauthorization: return 77
        case .keyConfiguration, .unknownKey, .schemaOutdated, .unknownProvider, .providerConfiguration: return 78
        default: return 70
        }
    }

    /// All of standard input, for token responses (secrets never travel in arguments).
    static func readStandardInput() -> [UInt8] {
        Array(FileHandle.standardInput.readDataToEndOfFile())
    }

    static func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func iso8601(_ date: Date?) -> String {
        guard let date else { return "-" }
        return date.formatted(.iso8601)
    }
}
