import Foundation

/// Where a rotation stands, passed to the progress callback after every batch.
public struct RotationProgress: Sendable {
    /// Rows handled so far (re-sealed, or found already re-sealed by someone else).
    public let done: Int
    /// Rows that were not under the current key when the run started.
    public let total: Int
    /// Seconds since the run started.
    public let elapsed: TimeInterval
}

/// What ``Vault/rotateKeys(batchSize:dryRun:progress:shouldStop:)`` did (or, in a dry run, would do).
public struct RotationReport: Sendable, Codable {
    /// The key every row is re-sealed under.
    public internal(set) var currentKeyID: KeyID
    /// Rows per key id before the run.
    public internal(set) var rowsByKeyIDBefore: [String: Int] = [:]
    /// Rows not under the current key when the run started.
    public internal(set) var toReseal = 0
    /// Rows this run re-sealed under the current key.
    public internal(set) var resealed = 0
    /// Rows that changed while the run worked on them and were already under the current key when re-read
    /// (a service stored or refreshed them).
    public internal(set) var changedMeanwhile = 0
    /// Rows that cannot be opened with the keyring (tampered or corrupted); left as they are.
    public internal(set) var failures: [VerificationReport.Failure] = []
    /// Rows still not under the current key after the run (0 when it finished).
    public internal(set) var remaining = 0
    /// Only counted what a run would do (``Vault/rotateKeys(batchSize:dryRun:progress:shouldStop:)`` with `dryRun`).
    public internal(set) var dryRun = false
    /// Stopped early after a batch because `shouldStop` returned true; run again to finish.
    public internal(set) var interrupted = false
    /// How long the run took.
    public internal(set) var seconds: Double = 0

    /// Rows re-sealed per second of the run; 0 when nothing took time.
    public var rowsPerSecond: Double { seconds > 0 ? Double(resealed) / seconds : 0 }

    enum CodingKeys: String, CodingKey {
        case currentKeyID = "current_key_id", rowsByKeyIDBefore = "rows_by_key_id_before", toReseal = "to_reseal"
        case resealed, changedMeanwhile = "changed_meanwhile", failures, remaining, dryRun = "dry_run"
        case interrupted, seconds, rowsPerSecond = "rows_per_second"
    }

    init(currentKeyID: KeyID) {
        self.currentKeyID = currentKeyID
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        currentKeyID = try container.decode(KeyID.self, forKey: .currentKeyID)
        rowsByKeyIDBefore = try container.decode([String: Int].self, forKey: .rowsByKeyIDBefore)
        toReseal = try container.decode(Int.self, forKey: .toReseal)
        resealed = try container.decode(Int.self, forKey: .resealed)
        changedMeanwhile = try container.decode(Int.self, forKey: .changedMeanwhile)
        failures = try container.decode([VerificationReport.Failure].self, forKey: .failures)
        remaining = try container.decode(Int.self, forKey: .remaining)
        dryRun = try container.decode(Bool.self, forKey: .dryRun)
        interrupted = try container.decode(Bool.self, forKey: .interrupted)
        seconds = try container.decode(Double.self, forKey: .seconds)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(currentKeyID, forKey: .currentKeyID)
        try container.encode(rowsByKeyIDBefore, forKey: .rowsByKeyIDBefore)
        try container.encode(toReseal, forKey: .toReseal)
        try container.encode(resealed, forKey: .resealed)
        try container.encode(changedMeanwhile, forKey: .changedMeanwhile)
        try container.encode(failures, forKey: .failures)
        try container.encode(remaining, forKey: .remaining)
        try container.encode(dryRun, forKey: .dryRun)
        try container.encode(interrupted, forKey: .interrupted)
        try container.encode(seconds, forKey: .seconds)
        try container.encode(rowsPerSecond, forKey: .rowsPerSecond)
    }
}
