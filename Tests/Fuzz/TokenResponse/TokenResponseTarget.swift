import Foundation
import TokenVault
import TokenVaultFuzzSupport

/// A token endpoint's body, as `TokenResponse.parse` reads it: from a provider, or from a person through
/// `token-vault put`. Whatever the bytes, parsing returns tokens or throws `.invalidInput`; tokens it returns can be
/// sealed and open to themselves.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenResponse(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    TokenResponseTarget.run(body)
    return 0
}

enum TokenResponseTarget {
    static let sealer: Sealer = {
        let key = try! VaultKey(base64: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")  // public test key A
        return Sealer(keyring: try! Keyring(current: key))
    }()
    static let fallback = Secret("1000.fallback-refresh-token")

    static func run(_ body: [UInt8]) {
        for requireAccessToken in [false, true] {
            let tokens: TokenSet
            do {
                tokens = try TokenResponse.parse(
                    body, fallbackRefreshToken: requireAccessToken ? fallback : nil,
                    requireAccessToken: requireAccessToken)
            } catch {
                Fuzz.require(error.code == .invalidInput, "parse threw \(error.code), not invalidInput")
                continue
            }
            Fuzz.require(!requireAccessToken || tokens.accessToken != nil, "no access token though required")
            FuzzTokens.checkSealsAndOpens(tokens, client: "acme-corp", provider: "zoho_crm", sealer: sealer)
        }
    }
}

@main
enum Main {
    static func main() { Fuzz.main(fuzzTokenResponse, replay: TokenResponseTarget.run) }
}
