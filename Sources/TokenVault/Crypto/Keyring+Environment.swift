extension Keyring {
    /// Environment variables that configure the keyring.
    public enum Variable {
        /// `TOKEN_VAULT_KEY`: the current key itself, as base64. Prefer ``keyFile``, which suits mounted secrets
        /// and keeps the key out of the environment that child processes inherit.
        public static let key = "TOKEN_VAULT_KEY"
        /// `TOKEN_VAULT_KEY_FILE`: the path of a file holding the current key as base64, such as a mounted secret.
        public static let keyFile = "TOKEN_VAULT_KEY_FILE"
        /// `TOKEN_VAULT_KEY_COMMAND`: a program and its arguments (no shell) that prints the current key as the key
        /// file holds it, such as a KMS decrypt of a wrapped data key. Run by the `token-vault` command line;
        /// ``fromEnvironment(_:)`` runs no program and refuses it (a service uses ``init(provider:)``).
        public static let keyCommand = "TOKEN_VAULT_KEY_COMMAND"
        /// `TOKEN_VAULT_PREVIOUS_KEYS`: retired keys as base64, separated by commas; optional.
        public static let previousKeys = "TOKEN_VAULT_PREVIOUS_KEYS"
        /// `TOKEN_VAULT_PREVIOUS_KEYS_FILE`: the path of a file with one retired key per line (blank lines and
        /// lines starting with `#` are skipped); optional.
        public static let previousKeysFile = "TOKEN_VAULT_PREVIOUS_KEYS_FILE"
        /// `TOKEN_VAULT_PREVIOUS_KEYS_COMMAND`: a program and its arguments (no shell) that prints retired keys as
        /// ``previousKeysFile`` holds them; optional, and run only by the `token-vault` command line, like
        /// ``keyCommand``.
        public static let previousKeysCommand = "TOKEN_VAULT_PREVIOUS_KEYS_COMMAND"
    }

    /// Loads the keyring from `TOKEN_VAULT_KEY` or `TOKEN_VAULT_KEY_FILE` (exactly one of them) and the
    /// optional previous keys: `TOKEN_VAULT_PREVIOUS_KEYS` (comma-separated) and/or `TOKEN_VAULT_PREVIOUS_KEYS_FILE`
    /// (a file with one key per line). Error messages never echo a value. Runs no program: with
    /// `TOKEN_VAULT_KEY_COMMAND` or `TOKEN_VAULT_PREVIOUS_KEYS_COMMAND` set it throws, and a service that keeps its
    /// keys in a KMS builds its keyring with ``init(provider:)`` instead.
    ///
    /// - Throws: `.keyConfiguration` when no current-key variable or more than one is set, a key command is set, a
    ///   key is not base64 of 32 bytes, a file cannot be read, or the keyring is inconsistent (see
    ///   ``init(current:previous:)``).
    public static func fromEnvironment(_ environment: [String: String]) throws(VaultError) -> Keyring {
        try load(fromEnvironment: environment, runningCommandsWith: nil).keyring
    }

    /// What ``load(fromEnvironment:runningCommandsWith:)`` found: the keyring, and where each of its keys came from
    /// (`TOKEN_VAULT_KEY_FILE`, `line 2 of TOKEN_VAULT_PREVIOUS_KEYS_FILE`, …), by key id.
    package struct Loaded: Sendable {
        package let keyring: Keyring
        package let sources: [KeyID: String]
    }

    /// Runs a key command: given the variable that holds the command line and the command line, returns the
    /// program's standard output in wiped memory, or throws a `.keyConfiguration` error that quotes nothing of it.
    package typealias CommandRunner = (_ variable: String, _ commandLine: String) throws(VaultError) -> Secret

    /// ``fromEnvironment(_:)``, with the key commands run by `runCommand` (nil: refused), and the source of each key.
    package static func load(
        fromEnvironment environment: [String: String], runningCommandsWith runCommand: CommandRunner?
    ) throws(VaultError) -> Loaded {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        func run(_ variable: String, _ commandLine: String) throws(VaultError) -> Secret {
            guard let runCommand else {
                throw VaultError(
                    .keyConfiguration,
                    "\(variable) is set, but Keyring.fromEnvironment runs no program: the token-vault command line "
                        + "runs key commands; a service fetches its keys through its own client and builds the "
                        + "keyring with Keyring(provider:).")
            }
            return try runCommand(variable, commandLine)
        }
        let currentSources = [Variable.key, Variable.keyFile, Variable.keyCommand].filter { value($0) != nil }
        guard currentSources.count <= 1 else {
            let named =
                currentSources.count == 2
                ? "both \(currentSources[0]) and \(currentSources[1]) are set"
                : "\(currentSources[0]), \(currentSources[1]) and \(currentSources[2]) are all set"
            throw VaultError(
                .keyConfiguration,
                "\(named); set exactly one source for the current key (a key file or a key command is preferred "
                    + "to the key itself).")
        }
        var sources: [KeyID: String] = [:]
        let current: VaultKey
        if let text = value(Variable.key) {
            current = try VaultKey(base64: text, name: Variable.key)
            sources[current.id] = Variable.key
        } else if let path = value(Variable.keyFile) {
            current = try VaultKey(contentsOfFile: path, variable: Variable.keyFile)
            sources[current.id] = "\(Variable.keyFile) (\(path))"
        } else if let commandLine = value(Variable.keyCommand) {
            let output = try run(Variable.keyCommand, commandLine)
            current = try VaultKey(base64Encoded: output, name: "the output of \(Variable.keyCommand)")
            sources[current.id] = Variable.keyCommand
        } else {
            throw VaultError(
                .keyConfiguration,
                "no encryption key: set \(Variable.keyFile) to the path of a file holding the key, "
                    + "\(Variable.keyCommand) to a program that prints it, or \(Variable.key) to the key itself. "
                    + VaultKey.howToMakeAKey)
        }
        var previous: [VaultKey] = []
        func add(_ keys: [VaultKey], _ describe: (Int) -> String) {
            for (index, key) in keys.enumerated() {
                previous.append(key)
                if sources[key.id] == nil { sources[key.id] = describe(index) }
            }
        }
        if let path = value(Variable.previousKeysFile) {
            let keys = try VaultKey.keys(fromFile: path, variable: Variable.previousKeysFile)
            add(keys) { "\(Variable.previousKeysFile) (\(path)), key \($0 + 1)" }
        }
        if let list = environment[Variable.previousKeys] {
            for (index, item) in list.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
                let trimmed = item.trimmingASCIIWhitespace()
                if trimmed.isEmpty { continue }
                let name = "entry \(index + 1) of \(Variable.previousKeys)"
                add([try VaultKey(base64: String(trimmed), name: name)]) { _ in name }
            }
        }
        if let commandLine = value(Variable.previousKeysCommand) {
            let output = try run(Variable.previousKeysCommand, commandLine)
            let parsed = output.withUnsafeBytes { bytes in
                Result { () throws(VaultError) in
                    try VaultKey.keys(inKeyFileText: bytes) {
                        "line \($0) of the output of \(Variable.previousKeysCommand)"
                    }
                }
            }
            let keys = try parsed.get()
            add(keys) { "\(Variable.previousKeysCommand), key \($0 + 1)" }
        }
        return Loaded(keyring: try Keyring(current: current, previous: previous), sources: sources)
    }
}
