import Foundation
import TokenVault

/// `TOKEN_VAULT_KEY_COMMAND` and `TOKEN_VAULT_PREVIOUS_KEYS_COMMAND`: a program that prints keys, run at start-up.
/// What it prints is read into wiped memory and never appears in a message; a failure quotes the end of what it
/// printed on stderr, minus any line that looks like key material.
package enum KeyCommand {
    /// `TOKEN_VAULT_KEY_COMMAND_TIMEOUT`: seconds a key command may take, from 0.1 to 600; default 30.
    package static let timeoutVariable = "TOKEN_VAULT_KEY_COMMAND_TIMEOUT"
    package static let defaultTimeout: Double = 30
    /// More than this on stdout is not a key file: the command is killed.
    package static let outputLimit = 64 * 1024
    /// How much of the end of stderr a message quotes, at most.
    static let quotedErrorLimit = 600

    /// Variables a key command does not inherit: the vault's other secrets, which it has no use for.
    package static let withheldVariables: Set<String> = [
        Keyring.Variable.key, Keyring.Variable.previousKeys, "DATABASE_URL", "PGPASSWORD", "ZOHO_CLIENT_SECRET",
        "ZOHO_REFRESH_TOKEN",
    ]

    /// ``withheldVariables`` and the variables that `TOKEN_VAULT_PROVIDERS_FILE` names as `client_secret_env`: the
    /// secrets a key command or a wrapping command must not inherit. The file is only glanced at here (at most
    /// 1 MiB, JSON); a file that does not read is reported when the providers are loaded, not here.
    package static func withheld(in environment: [String: String]) -> Set<String> {
        var names = withheldVariables
        guard let path = environment[VaultConfiguration.Variable.providersFile], !path.isEmpty,
            let handle = FileHandle(forReadingAtPath: path)
        else { return names }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: 1 << 20),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let providers = object["providers"] as? [[String: Any]]
        else { return names }
        for provider in providers {
            if let variable = provider["client_secret_env"] as? String { names.insert(variable) }
        }
        return names
    }

    /// The timeout from `TOKEN_VAULT_KEY_COMMAND_TIMEOUT`, or the default.
    ///
    /// - Throws: `.keyConfiguration` when it is not a number of seconds from 0.1 to 600.
    package static func timeout(_ environment: [String: String]) throws(VaultError) -> Double {
        guard let text = environment[timeoutVariable], !text.isEmpty else { return defaultTimeout }
        guard let value = Double(text), value >= 0.1, value <= 600 else {
            throw VaultError(
                .keyConfiguration, "\(timeoutVariable) must be a number of seconds from 0.1 to 600, not '\(text)'.")
        }
        return value
    }

    /// Runs key commands for ``Keyring/load(fromEnvironment:runningCommandsWith:)``, with the CLI's environment
    /// minus ``withheldVariables``.
    package static func runner(environment: [String: String]) throws(VaultError) -> Keyring.CommandRunner {
        let seconds = try timeout(environment)
        let withheld = withheld(in: environment)
        let inherited = environment.filter { !withheld.contains($0.key) }
        return { (variable, commandLine) throws(VaultError) in
            try run(commandLine, variable: variable, environment: inherited, timeout: seconds)
        }
    }

    /// Runs the command `commandLine` names and returns its stdout.
    ///
    /// - Throws: `.keyConfiguration` when the line cannot be split, the program cannot be started, exits other
    ///   than 0, is killed by a signal, outlives `timeout`, or prints more than ``outputLimit`` bytes.
    package static func run(
        _ commandLine: String, variable: String, environment: [String: String], timeout: Double
    ) throws(VaultError) -> Secret {
        let words = try CommandLineWords.split(commandLine, variable: variable)
        let program = "`\(words[0])`"
        let outcome: ChildProcess.Outcome
        switch ChildProcess.run(
            words, environment: environment, captureOutput: true, outputLimit: outputLimit,
            timeout: .milliseconds(Int64(timeout * 1000)))
        {
        case .failure(let failure):
            throw VaultError(
                .keyConfiguration,
                "\(variable): cannot run \(program): \(failure.reason). Key commands run without a shell: name an "
                    + "executable by its path or as found on PATH, followed by its arguments.")
        case .success(let result):
            outcome = result
        }
        let said = quotedErrors(outcome.errorTail, output: outcome.output)
        let discarded = "Nothing it printed on stdout was used or shown."
        switch outcome.ending {
        case .exited(0):
            return outcome.output
        case .exited(let status):
            throw VaultError(
                .keyConfiguration, "\(variable): \(program) exited with status \(status)\(said). \(discarded)")
        case .signalled(let signal):
            throw VaultError(
                .keyConfiguration, "\(variable): \(program) was killed by signal \(signal)\(said). \(discarded)")
        case .timedOut:
            throw VaultError(
                .keyConfiguration,
                "\(variable): \(program) did not finish within \(VaultError.seconds(timeout)) and was killed with its "
                    + "process group\(said). \(discarded) If it is only slow, raise \(timeoutVariable).")
        case .lost:
            throw VaultError(
                .keyConfiguration,
                "\(variable): \(program) could not be waited for, so whether it succeeded is unknown\(said). "
                    + "\(discarded)")
        case .outputTooLarge:
            throw VaultError(
                .keyConfiguration,
                "\(variable): \(program) printed more than \(outputLimit / 1024) KiB on stdout, which is not a key "
                    + "file, and was killed\(said). \(discarded)")
        }
    }

    /// `; its stderr ends: "…"` with the last lines of `errorTail`, or nothing when it printed none. A line that
    /// looks like key material (a long run of base64 with upper case, lower case and digits) is withheld, and all
    /// of stderr when it repeats a line the command printed on stdout.
    static func quotedErrors(_ errorTail: [UInt8], output: Secret) -> String {
        guard !errorTail.isEmpty else { return "" }
        let repeatsOutput = output.withUnsafeBytes { stdout in Self.contains(errorTail, stdout) }
        if repeatsOutput { return "; its stderr was withheld: it repeats what the command printed on stdout" }
        let lines = String(decoding: errorTail, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .map { looksLikeKeyMaterial($0) ? "<a line withheld: it looks like key material>" : $0 }
        guard !lines.isEmpty else { return "" }
        var quoted = lines.joined(separator: " | ")
        if quoted.count > quotedErrorLimit { quoted = "…" + quoted.suffix(quotedErrorLimit) }
        return "; its stderr ends: \"\(quoted)\""
    }

    /// Whether `haystack` contains any line of `output` (without its surrounding whitespace, 8 bytes or more),
    /// compared in place: the output is key material and is never copied out of its wiped buffer.
    static func contains(_ haystack: [UInt8], _ output: UnsafeRawBufferPointer) -> Bool {
        var lineStart = 0
        while lineStart < output.count {
            var lineEnd = lineStart
            while lineEnd < output.count && output[lineEnd] != 0x0a { lineEnd += 1 }
            var start = lineStart
            var end = lineEnd
            while start < end && output[start] <= 0x20 { start += 1 }
            while end > start && output[end - 1] <= 0x20 { end -= 1 }
            let length = end - start
            if length >= 8 && haystack.count >= length {
                let found = (0...(haystack.count - length)).contains { offset in
                    (0..<length).allSatisfy { haystack[offset + $0] == output[start + $0] }
                }
                if found { return true }
            }
            lineStart = lineEnd + 1
        }
        return false
    }

    /// A run of 40 or more standard base64 characters holding upper case, lower case and digits, or of 40 or more
    /// hex digits holding letters and digits: a key (44 characters in the key file's format), a token or a
    /// ciphertext, rather than words, paths (whose runs `-`, `.` and `_` break) or error codes.
    static func looksLikeKeyMaterial(_ line: String) -> Bool {
        var base64 = (run: 0, upper: false, lower: false, digit: false)
        var hex = (run: 0, letter: false, digit: false)
        for scalar in line.unicodeScalars {
            let value = scalar.value
            let isUpper = (0x41...0x5a).contains(value)
            let isLower = (0x61...0x7a).contains(value)
            let isDigit = (0x30...0x39).contains(value)
            let isHexLetter = (0x41...0x46).contains(value) || (0x61...0x66).contains(value)
            if isUpper || isLower || isDigit || scalar == "+" || scalar == "/" || scalar == "=" {
                base64 = (base64.run + 1, base64.upper || isUpper, base64.lower || isLower, base64.digit || isDigit)
                if base64.run >= 40 && base64.upper && base64.lower && base64.digit { return true }
            } else {
                base64 = (0, false, false, false)
            }
            if isDigit || isHexLetter {
                hex = (hex.run + 1, hex.letter || isHexLetter, hex.digit || isDigit)
                if hex.run >= 40 && hex.letter && hex.digit { return true }
            } else {
                hex = (0, false, false)
            }
        }
        return false
    }
}
