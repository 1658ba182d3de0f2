import Foundation
import TokenVaultTesting

// token-vault-test-postgres: starts or stops a throwaway PostgreSQL cluster for demos and scripts.
//   token-vault-test-postgres start      prints shell exports: export DATABASE_URL=…; export TOKEN_VAULT_TEST_PGDIR=…
//   token-vault-test-postgres stop DIR   stops the cluster in DIR and deletes DIR

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("token-vault-test-postgres: error: \(message)\n".utf8))
    exit(1)
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "start":
    do {
        let cluster = try TemporaryPostgres.start()
        // Exported, so that `eval "$(token-vault-test-postgres start)"` is enough for the commands run after it.
        print("export DATABASE_URL='\(cluster.databaseURL)'; export TOKEN_VAULT_TEST_PGDIR='\(cluster.directory)'")
    } catch {
        fail("\(error)")
    }
case "stop":
    guard arguments.count == 2, let directory = arguments.last, directory.hasPrefix("/tmp/token-vault-pg-") else {
        fail("usage: token-vault-test-postgres stop /tmp/token-vault-pg-XXXXXX")
    }
    do {
        try TemporaryPostgres.attach(directory: directory).stop()
    } catch {
        fail("\(error)")
    }
default:
    fail("usage: token-vault-test-postgres start | stop DIR")
}
