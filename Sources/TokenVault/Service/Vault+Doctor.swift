import Foundation

extension Vault {
    /// Checks what the vault depends on and reports, check by check, what is wrong and what fixes it: the database
    /// is reachable; the connection uses TLS (a warning for a server that is not on this host without TLS, or
    /// with TLS below `sslmode=verify-full`); the schema is current; rows per key id, rows under keys other than
    /// the current one, previous keys that no row uses (safe to retire); rows needing re-authorization; the audit
    /// chains verify; no server setting copies what the vault sends into the server's logs (`log_statement`,
    /// `log_min_duration_statement` and sampling with parameters, `auto_explain`); no pooler or proxy in the path.
    /// The keys themselves (configured, well-formed, file modes) are the caller's to check before making the vault.
    ///
    /// Never throws for what it checks: an unreachable database is a finding (`database`, error).
    public func doctor() async -> DoctorReport {
        var report = DoctorReport()
        let version: Int
        do {
            version = try await repository.schemaVersion()
        } catch {
            report.add("database", .error, "the database cannot be used: \(error.message)")
            return report
        }
        report.add("database", .ok, "the database answers")
        let facts: ServerFacts
        do {
            facts = try await repository.serverFacts(schemaVersion: version)
        } catch {
            report.add("database", .error, "reading the server's settings failed: \(error.message)")
            return report
        }
        Self.checkTLS(facts.endpoint, into: &report)
        if version < Migrations.latestVersion {
            report.add(
                "schema", .error,
                "the schema is at version \(version); this vault needs \(Migrations.latestVersion): run migrate.")
            return report
        }
        report.add("schema", .ok, "the schema is at version \(version)")
        await checkKeys(facts, into: &report)
        if facts.rowsNeedingReauthorization > 0 {
            report.add(
                "reauthorization", .warning,
                "\(facts.rowsNeedingReauthorization) row\(facts.rowsNeedingReauthorization == 1 ? "" : "s") need "
                    + "re-authorization: the provider refused their refresh token; their users must connect again "
                    + "(list them with list(filter: .needsReauthorization)).")
        } else {
            report.add("reauthorization", .ok, "no row needs re-authorization")
        }
        await checkAudit(into: &report)
        Self.checkServerLogs(facts.settings, into: &report)
        if !facts.serverPort.isEmpty, !facts.endpoint.port.isEmpty, facts.serverPort != facts.endpoint.port {
            report.add(
                "pooler", .warning,
                "the vault connects to port \(facts.endpoint.port) but the server listens on \(facts.serverPort): a "
                    + "pooler or proxy is in the path. It sees every statement (ciphertexts, client ids, metadata): "
                    + "use TLS on both of its sides, keep its logs free of statements, and set preparedStatements "
                    + "to false if it pools by transaction (docs/poolers.md).")
        } else {
            report.add("pooler", .ok, "no pooler or proxy in the path (the server listens on the port connected to)")
        }
        return report
    }

    package static func checkTLS(_ endpoint: PGConnection.Endpoint, into report: inout DoctorReport) {
        let local =
            endpoint.host.isEmpty || endpoint.host.hasPrefix("/") || endpoint.host.hasPrefix("@")
            || ["localhost", "127.0.0.1", "::1"].contains(endpoint.host)
        let mode = endpoint.sslMode.isEmpty ? "prefer" : endpoint.sslMode
        if endpoint.tlsInUse {
            if mode == "verify-full" {
                report.add("tls", .ok, "TLS is in use, with sslmode=verify-full")
            } else {
                report.add(
                    "tls", local ? .info : .warning,
                    "TLS is in use but sslmode=\(mode) does not check the server's certificate and name: a machine "
                        + "in the path can pose as the server. Use sslmode=verify-full (with sslrootcert).")
            }
        } else if local {
            report.add(
                "tls", .ok, "no TLS, to a server on this host (\(endpoint.host.isEmpty ? "socket" : endpoint.host))")
        } else {
            report.add(
                "tls", .warning,
                "the connection to \(endpoint.host) does not use TLS (sslmode=\(mode)): the password and every "
                    + "statement cross the network in clear. Use sslmode=verify-full.")
        }
    }

    private func checkKeys(_ facts: ServerFacts, into report: inout DoctorReport) async {
        let counts: [KeyID: Int]
        do {
            counts = try await repository.countByKeyID()
        } catch {
            return report.add("keys", .error, "counting rows per key id failed: \(error.message)")
        }
        let keyring = sealer.keyring
        let listing = counts.sorted { $0.key < $1.key }.map {
            "\($0.key)\($0.key == keyring.current.id ? " (current)" : ""): \($0.value)"
        }
        report.add(
            "keys", .ok, counts.isEmpty ? "no rows stored" : "rows per key id: \(listing.joined(separator: ", "))")
        let unknown = counts.filter { keyring.key(for: $0.key) == nil }
        if !unknown.isEmpty {
            report.add(
                "keys", .error,
                "\(unknown.values.reduce(0, +)) rows are sealed under keys that are not configured "
                    + "(\(unknown.keys.sorted().map(\.rawValue).joined(separator: ", "))): they cannot be opened. Add "
                    + "those keys to the previous keys.")
        }
        let old = counts.filter { $0.key != keyring.current.id && keyring.key(for: $0.key) != nil }
        if !old.isEmpty {
            report.add(
                "rotation", .warning,
                "\(old.values.reduce(0, +)) rows are still sealed under previous keys "
                    + "(\(old.keys.sorted().map(\.rawValue).joined(separator: ", "))): finish the rotation "
                    + "(rotateKeys).")
        }
        for key in keyring.previous where counts[key.id] == nil {
            let events = facts.auditEventsByKeyID[key.id.rawValue] ?? 0
            report.add(
                "retire", .info,
                "previous key \(key.id) seals no row: safe to retire"
                    + (events > 0
                        ? ", but \(events) audit events are authenticated under it: keep it while they are kept, or "
                            + "prune them first" : "")
                    + ".")
        }
    }

    private func checkAudit(into report: inout DoctorReport) async {
        guard auditEnabled else {
            return report.add(
                "audit", .warning, "the audit trail is off: changes to the tokens leave no record in the database.")
        }
        do {
            let audit = try await verifyAudit()
            if !audit.problems.isEmpty {
                report.add(
                    "audit", .error,
                    "\(audit.problems.count) audit chains are broken; the first: \(audit.problems[0]). Investigate "
                        + "who wrote to the database.")
            } else if audit.unauthenticated > 0 {
                report.add(
                    "audit", .warning,
                    "\(audit.unauthenticated) audit events are authenticated under keys that are not configured and "
                        + "cannot be checked.")
            } else {
                report.add("audit", .ok, "\(audit.chains) audit chains, \(audit.events) events: intact")
            }
        } catch {
            report.add("audit", .error, "checking the audit trail failed: \(error.message)")
        }
    }

    /// Flags the settings that copy the vault's statements, with their parameters (ciphertexts, client ids,
    /// metadata), into the server's logs, where they outlive the database's access control.
    package static func checkServerLogs(_ settings: [String: String], into report: inout DoctorReport) {
        var problems: [String] = []
        let parameters = settings["log_parameter_max_length"].map { $0 != "0" } ?? true
        if let value = settings["log_statement"], ["all", "mod"].contains(value) {
            problems.append("log_statement = \(value) logs every write the vault makes, with its parameters")
        }
        if let value = settings["log_min_duration_statement"], let ms = Int(value), ms >= 0, parameters {
            problems.append(
                "log_min_duration_statement = \(value) logs statements that take longer, with their parameters "
                    + "(unless log_parameter_max_length = 0)")
        }
        if let value = settings["log_min_duration_sample"], let ms = Int(value), ms >= 0,
            let rate = settings["log_statement_sample_rate"].flatMap(Double.init), rate > 0, parameters
        {
            problems.append("log_min_duration_sample = \(value) logs a sample of statements, with their parameters")
        }
        if let rate = settings["log_transaction_sample_rate"].flatMap(Double.init), rate > 0 {
            problems.append("log_transaction_sample_rate = \(rate) logs every statement of sampled transactions")
        }
        if let value = settings["log_parameter_max_length_on_error"], value != "0" {
            problems.append("log_parameter_max_length_on_error = \(value) logs the parameters of failed statements")
        }
        let libraries = [settings["shared_preload_libraries"], settings["session_preload_libraries"]]
            .compactMap { $0 }.joined(separator: ",")
        if libraries.contains("auto_explain"), let value = settings["auto_explain.log_min_duration"],
            let ms = Int(value), ms >= 0
        {
            problems.append(
                "auto_explain is loaded with auto_explain.log_min_duration = \(value): it logs the plans of slower "
                    + "statements, with their parameters on PostgreSQL 16 and later")
        }
        for flag in ["debug_print_parse", "debug_print_plan"] where settings[flag] == "on" {
            problems.append("\(flag) = on logs the statements' parse trees")
        }
        if problems.isEmpty {
            report.add("server_logs", .ok, "no server setting copies the vault's statements into the server's logs")
        } else {
            report.add(
                "server_logs", .warning,
                problems.joined(separator: "; ")
                    + ". The logs then hold ciphertexts, client ids and metadata beyond the database's access "
                    + "control (and readable with the key by whoever gets both). Set them off for the vault's "
                    + "role: ALTER ROLE <role> SET log_statement = 'none', log_min_duration_statement = -1, "
                    + "log_parameter_max_length = 0 (as a superuser).")
        }
    }
}
