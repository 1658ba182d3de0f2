import XCTest

@testable import TokenVault

/// `doctor`'s rules for TLS and for the server's logging settings, on the values a server would report.
final class DoctorRuleTests: XCTestCase {
    func tls(_ host: String, _ mode: String, tls: Bool) -> DoctorReport.Finding {
        var report = DoctorReport()
        Vault.checkTLS(.init(host: host, port: "5432", sslMode: mode, tlsInUse: tls), into: &report)
        return report.findings[0]
    }

    func testTLSByWhereTheServerIs() {
        XCTAssertEqual(tls("/var/run/postgresql", "prefer", tls: false).severity, .ok)
        XCTAssertEqual(tls("localhost", "disable", tls: false).severity, .ok)
        XCTAssertEqual(tls("db.internal", "verify-full", tls: true).severity, .ok)
        let clear = tls("db.internal", "prefer", tls: false)
        XCTAssertEqual(clear.severity, .warning)
        XCTAssertTrue(clear.message.contains("does not use TLS (sslmode=prefer)"), clear.message)
        let unchecked = tls("10.0.0.5", "require", tls: true)
        XCTAssertEqual(unchecked.severity, .warning)
        XCTAssertTrue(unchecked.message.contains("sslmode=require does not check"), unchecked.message)
        XCTAssertEqual(tls("127.0.0.1", "verify-ca", tls: true).severity, .info)
    }

    func logs(_ settings: [String: String]) -> DoctorReport.Finding {
        var report = DoctorReport()
        Vault.checkServerLogs(settings, into: &report)
        return report.findings[0]
    }

    func testServerLogSettings() {
        let quiet = [
            "log_statement": "ddl", "log_min_duration_statement": "-1", "log_parameter_max_length": "-1",
            "log_parameter_max_length_on_error": "0", "shared_preload_libraries": "", "session_preload_libraries": "",
        ]
        XCTAssertEqual(logs(quiet).severity, .ok)
        var slow = quiet
        slow["log_min_duration_statement"] = "250"
        XCTAssertEqual(logs(slow).severity, .warning)
        slow["log_parameter_max_length"] = "0"
        XCTAssertEqual(logs(slow).severity, .ok, "statements without their parameters hold nothing of the vault's")
        var mod = quiet
        mod["log_statement"] = "mod"
        XCTAssertTrue(logs(mod).message.contains("log_statement = mod"))
        var explain = quiet
        explain["session_preload_libraries"] = "auto_explain"
        explain["auto_explain.log_min_duration"] = "-1"
        XCTAssertEqual(logs(explain).severity, .ok, "loaded but off")
        explain["auto_explain.log_min_duration"] = "0"
        XCTAssertEqual(logs(explain).severity, .warning)
        var errors = quiet
        errors["log_parameter_max_length_on_error"] = "-1"
        XCTAssertTrue(logs(errors).message.contains("parameters of failed statements"))
        var sampled = quiet
        sampled["log_transaction_sample_rate"] = "0.01"
        XCTAssertEqual(logs(sampled).severity, .warning)
    }

    func testTheReportsSeverityIsItsWorstFinding() {
        var report = DoctorReport()
        XCTAssertEqual(report.severity, .ok)
        report.add("a", .info, "x")
        report.add("b", .warning, "y")
        XCTAssertEqual(report.severity, .warning)
        report.add("c", .ok, "z")
        XCTAssertEqual(report.severity, .warning)
        report.add("d", .error, "w")
        XCTAssertEqual(report.severity, .error)
    }
}
