import Foundation
import TokenVaultTesting

// token-vault-test-postgres: starts or stops a throwaway PostgreSQL cluster for demos and scripts.
//   token-vault-test-postgres start      prints shell exports: export DATABASE_URL=…; export TOKEN_VAULT_TEST_PGDIR=…
//   token-vault-test-postgres pgbouncer  starts PgBouncer in transaction mode in front of DATABASE_URL's server and
//                                        prints: export DATABASE_URL=<the same database through it>;
//                                        export TOKEN_VAULT_TEST_PGBDIR=…
//   token-vault-test-postgres stop DIR   stops the cluster or the PgBouncer in DIR and deletes DIR

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
case "pgbouncer":
    guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
        fail(
            "set DATABASE_URL to the server to put PgBouncer in front of (eval \"$(token-vault-test-postgres start)\")")
    }
    do {
        let bouncer = try TemporaryPgBouncer.start(inFrontOf: url)
        let through = bouncer.url(database: try TemporaryPgBouncer.server(of: url).database)
        print("export DATABASE_URL='\(through)'; export TOKEN_VAULT_TEST_PGBDIR='\(bouncer.directory)'")
    } catch {
        fail("\(error)")
    }
case "stop":
    guard arguments.count == 2, let directory = arguments.last else {
        fail("usage: token-vault-test-postgres stop /tmp/token-vault-pg-XXXXXX | /tmp/token-vault-pgb-XXXXXX")
    }
    do {
        if directory.hasPrefix("/tmp/token-vault-pgb-") {
            TemporaryPgBouncer.attach(directory: directory).stop()
        } else if directory.hasPrefix("/tmp/token-vault-pg-") {
            try TemporaryPostgres.attach(directory: directory).stop()
        } else {
            fail("usage: token-vault-test-postgres stop /tmp/token-vault-pg-XXXXXX | /tmp/token-vault-pgb-XXXXXX")
        }
    } catch {
        fail("\(error)")
    }
default:
    fail("usage: token-vault-test-postgres start | pgbouncer | stop DIR")
}
