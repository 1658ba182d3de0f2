import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the keys, the database and the server's settings; say what to fix.",
        discussion: """
            Checks: the key is configured and well-formed, key files' modes; the database answers; TLS (a \
            warning for a server not on this host without TLS or below sslmode=verify-full); the schema; rows per \
            key id, rows under previous keys, previous keys no row uses (safe to retire); rows needing \
            re-authorization; the audit chains; server settings that copy statements into the server's logs; a \
            pooler or proxy in the path.

            Exit status: 0 nothing to fix (ok or info only), 1 warnings, 2 errors.

            Examples:
              token-vault doctor
              token-vault doctor --json
            """)

    @Flag(help: "Print the report as JSON.")
    var json = false

    /// The checks that need the configured keys: left out when the keys cannot be read.
    static let keyChecks: Set<String> = ["keys", "rotation", "retire", "audit"]

    func run() async throws {
        var report = DoctorReport()
        let environment = ProcessInfo.processInfo.environment
        var keysUsable = true
        do {
            let keyring = try Keyring.fromEnvironment(environment)
            let source =
                (environment[Keyring.Variable.keyFile] ?? "").isEmpty
                ? Keyring.Variable.key : Keyring.Variable.keyFile
            report.add(
                "key", .ok,
                "the current key \(keyring.current.id) is configured (\(source)) and well-formed"
                    + (keyring.previous.isEmpty ? "" : ", with \(keyring.previous.count) previous keys"))
            if source == Keyring.Variable.key {
                report.add(
                    "key", .warning,
                    "the key is in the environment (\(Keyring.Variable.key)), where crash reports and /proc/PID/environ "
                        + "can show it: mount it as a file and set \(Keyring.Variable.keyFile) instead.")
            }
            if !(environment[Keyring.Variable.previousKeys] ?? "").isEmpty {
                report.add(
                    "key", .warning,
                    "previous keys are in the environment (\(Keyring.Variable.previousKeys)): prefer "
                        + "\(Keyring.Variable.previousKeysFile).")
            }
        } catch {
            keysUsable = false
            report.add("key", .error, "\(error.message) \(CLI.hint(for: error) ?? "")")
        }
        for variable in [Keyring.Variable.keyFile, Keyring.Variable.previousKeysFile] {
            guard let path = environment[variable], !path.isEmpty else { continue }
            report.findings.append(Self.fileMode(path, variable: variable))
        }
        var databaseEnvironment = environment
        if !keysUsable {
            // The database checks still run, with a throwaway key; those that need the real keys are left out.
            for variable in [
                Keyring.Variable.keyFile, Keyring.Variable.previousKeys, Keyring.Variable.previousKeysFile,
            ] {
                databaseEnvironment[variable] = nil
            }
            databaseEnvironment[Keyring.Variable.key] = VaultKey.generate().exportBase64()
        }
        do {
            let vault = try Vault(
                configuration: VaultConfiguration.fromEnvironment(databaseEnvironment), logger: CLI.logger)
            let found = await vault.doctor()
            await vault.shutdown()
            report.findings += found.findings.filter { keysUsable || !Self.keyChecks.contains($0.check) }
        } catch {
            report.add("configuration", .error, "\(error.message) \(CLI.hint(for: error) ?? "")")
        }
        if json {
            try CLI.printJSON(report)
        } else {
            for finding in report.findings {
                let label = finding.severity.rawValue.uppercased().padding(toLength: 8, withPad: " ", startingAt: 0)
                let check = finding.check.padding(toLength: 16, withPad: " ", startingAt: 0)
                print("\(label)\(check)\(CLI.printable(finding.message))")
            }
            let counts = [DoctorReport.Severity.error, .warning].map { severity in
                (severity, report.findings.filter { $0.severity == severity }.count)
            }
            print(counts.map { "\($0.1) \($0.0.rawValue)\($0.1 == 1 ? "" : "s")" }.joined(separator: ", "))
        }
        switch report.severity {
        case .error: throw ExitCode(2)
        case .warning: throw ExitCode(1)
        default: return
        }
    }

    /// A key file's mode and owner. The keyring already refuses a file others can read or change; this says what
    /// the mode is, and flags one the owner's group can read.
    static func fileMode(_ path: String, variable: String) -> DoctorReport.Finding {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue
        else {
            return .init(check: "key_file", severity: .error, message: "\(variable): cannot read the file's mode")
        }
        let owner = (attributes[.ownerAccountID] as? NSNumber)?.intValue ?? -1
        let text = "\(variable): mode 0\(String(mode & 0o777, radix: 8)), owner uid \(owner)"
        if mode & 0o077 == 0 { return .init(check: "key_file", severity: .ok, message: text) }
        if mode & 0o037 == 0 {
            return .init(
                check: "key_file", severity: .info,
                message: text + ": its group can read it; 0400 or 0600 unless a group must (root-owned mounts)")
        }
        return .init(
            check: "key_file", severity: .error,
            message: text + ": others can read or change it: chmod 0400 (the vault refuses to read it so)")
    }
}
