import Foundation
import TokenVault
import TokenVaultFuzzSupport

/// One line of `token-vault import`, as `ImportRecord.parse(line:)` reads it. Whatever the bytes, parsing returns a
/// record or throws `.invalidInput`; a record it returns has ids the vault accepts and tokens that seal and open.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImportLine(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let line = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    ImportLineTarget.run(line)
    return 0
}

enum ImportLineTarget {
    static let sealer: Sealer = {
        let key = try! VaultKey(base64: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")  // public test key A
        return Sealer(keyring: try! Keyring(current: key))
    }()

    static func run(_ line: [UInt8]) {
        let record: ImportRecord
        do {
            record = try ImportRecord.parse(line: line)
        } catch {
            Fuzz.require(error.code == .invalidInput, "parse threw \(error.code), not invalidInput")
            return
        }
        for id in [record.client, record.provider] {
            Fuzz.require(!id.isEmpty && id.utf8.count <= 256, "an id of \(id.utf8.count) bytes was accepted")
            Fuzz.require(!id.utf8.contains { $0 < 0x20 }, "an id with a control character was accepted")
        }
        Fuzz.require(record.droppedFields == record.droppedFields.sorted(), "dropped fields are not sorted")
        for name in ["client_id", "provider", "access_token", "refresh_token", "expires_at"] {
            Fuzz.require(!record.droppedFields.contains(name), "\(name) is named as dropped")
        }
        FuzzTokens.checkSealsAndOpens(
            record.tokens, client: record.client, provider: record.provider, sealer: sealer)
    }
}

@main
enum Main {
    static func main() { Fuzz.main(fuzzImportLine, replay: ImportLineTarget.run) }
}
