import Foundation
import TokenVault

// token-vault-test-stampede --client C --provider P --callers N [--wait-for FILE] [--request-timeout S]
//     [--attempts N]
// Test support: N concurrent `accessToken` calls in one process, configured from the environment like the CLI.
// Prints one line per caller: the access token (test tokens only) or "error <code>: <message>".
// With --wait-for, waits until FILE exists before starting, so that several processes start together.
// --request-timeout and --attempts set the refresh policy (and with it the refresh lease's duration).

var arguments = [String: String]()
var iterator = CommandLine.arguments.dropFirst().makeIterator()
while let name = iterator.next() {
    guard name.hasPrefix("--"), let value = iterator.next() else {
        FileHandle.standardError.write(
            Data("usage: token-vault-test-stampede --client C --provider P --callers N\n".utf8))
        exit(64)
    }
    arguments[String(name.dropFirst(2))] = value
}
guard let client = arguments["client"], let provider = arguments["provider"] else {
    FileHandle.standardError.write(Data("--client and --provider are required\n".utf8))
    exit(64)
}
let callers = Int(arguments["callers"] ?? "50") ?? 50
if let gate = arguments["wait-for"] {
    while !FileManager.default.fileExists(atPath: gate) { usleep(2_000) }
}

let vault: Vault
do {
    var configuration = try VaultConfiguration.fromEnvironment()
    if let timeout = arguments["request-timeout"].flatMap(Double.init) {
        configuration.refreshPolicy.requestTimeout = timeout
    }
    if let attempts = arguments["attempts"].flatMap(Int.init) { configuration.refreshPolicy.attempts = attempts }
    vault = try Vault(configuration: configuration)
} catch {
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(78)
}
let lines = await withTaskGroup(of: String.self) { group in
    for _ in 0..<callers {
        group.addTask {
            do throws(VaultError) {
                return try await vault.accessToken(client: client, provider: provider).value.reveal()
            } catch {
                return "error \(error.code): \(error.message)"
            }
        }
    }
    var lines: [String] = []
    for await line in group { lines.append(line) }
    return lines
}
await vault.shutdown()
print(lines.joined(separator: "\n"))
exit(lines.contains { $0.hasPrefix("error ") } ? 1 : 0)
