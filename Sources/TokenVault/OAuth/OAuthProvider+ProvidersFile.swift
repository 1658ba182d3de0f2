import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Any RFC 6749 provider from a JSON file (`TOKEN_VAULT_PROVIDERS_FILE`), validated with errors that name the line.
/// The format is in docs/connecting.md.
extension OAuthProvider {
    /// The fields a provider may have in a providers file.
    static let providerFileFields: Set<String> = [
        "name", "token_url", "authorization_url", "revocation_url", "client_id", "client_secret",
        "client_secret_file", "client_secret_env", "client_authentication", "scope_separator", "metadata_fields",
        "authorization_parameters", "refresh_rate_limit", "revocation_token_in_query",
    ]

    /// Response fields that are credentials and may never be kept as (plaintext) metadata.
    static let credentialFields: Set<String> = [
        "access_token", "refresh_token", "id_token", "client_secret", "code", "code_verifier",
    ]

    /// Authorization parameters the vault sets itself.
    static let reservedAuthorizationParameters: Set<String> = [
        "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method",
    ]

    /// The providers in the JSON file at `path`: `{"providers": [{"name": …, "token_url": …, …}, …]}`.
    ///
    /// Each provider has `name`, `token_url` and `client_id`, and exactly one of `client_secret_file` (a file
    /// under the key-file rule: 0600, or 0640 owned by root), `client_secret_env` (an environment variable in
    /// `environment`) and `client_secret` (inline, allowed only when this file itself passes the key-file rule);
    /// optionally `authorization_url`, `revocation_url`, `client_authentication` (`body`, the default, or
    /// `basic`), `scope_separator` (a space by default), `metadata_fields` (response fields kept as plaintext
    /// metadata; default `api_domain`, `token_type`), `authorization_parameters` (an object of strings, such as
    /// `{"access_type": "offline", "prompt": "consent"}` for Google), `refresh_rate_limit` (`{"count": 10,
    /// "window": 600}`) and `revocation_token_in_query`. URLs are https, or http to a loopback address.
    ///
    /// - Parameters:
    ///   - path: the file to read (at most 1 MiB).
    ///   - environment: where `client_secret_env` variables are looked up.
    ///   - variable: the environment variable that named the file, for messages.
    /// - Throws: `.providerConfiguration` naming the file and the line of the first mistake: a syntax error, an
    ///   unknown or missing field, a value of the wrong type or out of range, a duplicate name, an unreadable or
    ///   too open secret file, an unset variable. Never quotes a secret.
    public static func fromProvidersFile(
        _ path: String, environment: [String: String], variable: String? = nil
    ) throws(VaultError) -> [OAuthProvider] {
        let named = variable.map { "\($0) (\(path))" } ?? path
        func fail(_ line: Int?, _ message: String) -> VaultError {
            VaultError(
                .providerConfiguration, "the providers file \(named)\(line.map { " line \($0)" } ?? ""): \(message)")
        }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw fail(nil, "cannot be read: \(String(cString: strerror(errno))).") }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            close(descriptor)
            throw fail(nil, "cannot be read: \(String(cString: strerror(errno))).")
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        let data = (try? handle.read(upToCount: 1 << 20 + 1)) ?? Data()
        guard data.count <= 1 << 20 else { throw fail(nil, "is larger than 1 MiB.") }
        let fileProblem = VaultKey.accessProblem(
            mode: info.st_mode & 0o777, owner: info.st_uid, guarding: "the client secrets in it")

        let root: LocatedJSON.Located
        do {
            root = try LocatedJSON.parse(Array(data))
        } catch {
            throw fail(error.line, "\(error.message).")
        }
        guard case .object(let top) = root.value else {
            throw fail(root.line, "the file must hold a JSON object {\"providers\": [ … ]}, not \(root.value.kind).")
        }
        for member in top where member.key != "providers" {
            throw fail(member.value.line, "unknown field '\(shown(member.key))'; the file holds only \"providers\".")
        }
        guard let list = top.first(where: { $0.key == "providers" })?.value else {
            throw fail(root.line, "no \"providers\" array.")
        }
        guard case .array(let entries) = list.value, !entries.isEmpty else {
            throw fail(list.line, "\"providers\" must be a non-empty array of provider objects.")
        }
        var providers: [OAuthProvider] = []
        var lines: [String: Int] = [:]
        for entry in entries {
            guard case .object(let fields) = entry.value else {
                throw fail(entry.line, "each provider must be an object, not \(entry.value.kind).")
            }
            let field = Dictionary(fields.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
            for member in fields where !providerFileFields.contains(member.key) {
                throw fail(
                    member.value.line,
                    "unknown field '\(shown(member.key))' (known: \(providerFileFields.sorted().joined(separator: ", ")))."
                )
            }
            func string(_ key: String, required: Bool = false) throws(VaultError) -> String? {
                guard let value = field[key] else {
                    if required { throw fail(entry.line, "this provider has no \"\(key)\", which is required.") }
                    return nil
                }
                guard case .string(let text) = value.value, !text.isEmpty else {
                    throw fail(value.line, "\"\(key)\" must be a non-empty string, not \(value.value.kind).")
                }
                return text
            }
            func url(_ key: String, required: Bool = false) throws(VaultError) -> URL? {
                guard let text = try string(key, required: required) else { return nil }
                guard let url = URL(string: text), let parts = URLComponents(string: text),
                    let scheme = parts.scheme?.lowercased(), let host = parts.host?.lowercased(), !host.isEmpty,
                    parts.user == nil, parts.password == nil, parts.fragment == nil,
                    scheme == "https"
                        || (scheme == "http" && ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host))
                else {
                    throw fail(
                        field[key]!.line,
                        "\"\(key)\" must be an https URL (http only to 127.0.0.1 or localhost), without user, password "
                            + "or fragment; '\(shown(text))' is not.")
                }
                return url
            }
            let name = try string("name", required: true)!
            guard name.utf8.count <= 256, !name.utf8.contains(where: { $0 < 0x20 }) else {
                throw fail(field["name"]!.line, "\"name\" must be 1 to 256 bytes of printable text.")
            }
            if let first = lines[name] {
                throw fail(field["name"]!.line, "the provider name '\(shown(name))' is already used on line \(first).")
            }
            lines[name] = field["name"]!.line
            let tokenURL = try url("token_url", required: true)!
            let clientID = try string("client_id", required: true)!

            let secretKeys = ["client_secret", "client_secret_file", "client_secret_env"].filter { field[$0] != nil }
            guard secretKeys.count == 1 else {
                throw fail(
                    entry.line,
                    "provider '\(shown(name))' needs exactly one of \"client_secret_file\", \"client_secret_env\" and "
                        + "\"client_secret\" (inline); it has \(secretKeys.isEmpty ? "none" : secretKeys.joined(separator: " and "))."
                )
            }
            let secret: Secret
            switch secretKeys[0] {
            case "client_secret_file":
                let file = try string("client_secret_file")!
                do {
                    secret = try Secret(contentsOfFile: file, variable: nil)
                } catch {
                    throw fail(field["client_secret_file"]!.line, error.message)
                }
            case "client_secret_env":
                let name = try string("client_secret_env")!
                guard let value = environment[name], !value.isEmpty else {
                    throw fail(
                        field["client_secret_env"]!.line,
                        "\"client_secret_env\" names \(shown(name)), which is not set (or empty).")
                }
                secret = Secret(value)
            default:
                if let fileProblem {
                    throw fail(
                        field["client_secret"]!.line,
                        "\"client_secret\" is inline, but the file \(fileProblem) Or move the secret to "
                            + "\"client_secret_file\" or \"client_secret_env\".")
                }
                guard case .string(let text) = field["client_secret"]!.value, !text.isEmpty else {
                    throw fail(field["client_secret"]!.line, "\"client_secret\" must be a non-empty string.")
                }
                secret = Secret(text)
            }
            var provider = OAuthProvider(name: name, tokenURL: tokenURL, clientID: clientID, clientSecret: secret)
            provider.authorizationURL = try url("authorization_url")
            provider.revocationURL = try url("revocation_url")
            switch try string("client_authentication") {
            case nil, "body": provider.clientAuthentication = .requestBody
            case "basic": provider.clientAuthentication = .httpBasic
            case let other?:
                throw fail(
                    field["client_authentication"]!.line,
                    "\"client_authentication\" must be \"body\" or \"basic\", not '\(shown(other))'.")
            }
            if let separator = field["scope_separator"] {
                guard case .string(let text) = separator.value, [" ", ","].contains(text) else {
                    throw fail(separator.line, "\"scope_separator\" must be \" \" or \",\".")
                }
                provider.scopeSeparator = text
            }
            if let list = field["metadata_fields"] {
                guard case .array(let items) = list.value else {
                    throw fail(
                        list.line, "\"metadata_fields\" must be an array of field names, not \(list.value.kind).")
                }
                var names: Set<String> = []
                for item in items {
                    guard case .string(let text) = item.value, !text.isEmpty else {
                        throw fail(item.line, "each of \"metadata_fields\" must be a non-empty string.")
                    }
                    guard !credentialFields.contains(text) else {
                        throw fail(
                            item.line,
                            "'\(shown(text))' is a credential and cannot be metadata (stored in plaintext); the "
                                + "vault seals only the access and refresh tokens.")
                    }
                    names.insert(text)
                }
                provider.metadataFields = names
            }
            if let parameters = field["authorization_parameters"] {
                guard case .object(let members) = parameters.value else {
                    throw fail(parameters.line, "\"authorization_parameters\" must be an object of strings.")
                }
                for member in members {
                    guard case .string(let text) = member.value.value else {
                        throw fail(
                            member.value.line, "authorization parameter '\(shown(member.key))' must be a string.")
                    }
                    guard !reservedAuthorizationParameters.contains(member.key) else {
                        throw fail(
                            member.value.line,
                            "authorization parameter '\(shown(member.key))' is set by the vault itself.")
                    }
                    provider.authorizationParameters[member.key] = text
                }
            }
            if let limit = field["refresh_rate_limit"] {
                guard case .object(let members) = limit.value,
                    let count = members.first(where: { $0.key == "count" }),
                    let window = members.first(where: { $0.key == "window" }), members.count == 2,
                    case .number(let countValue) = count.value.value,
                    case .number(let windowValue) = window.value.value,
                    countValue >= 1, countValue <= 1_000_000, countValue == countValue.rounded(), windowValue > 0,
                    windowValue <= 86_400
                else {
                    throw fail(
                        limit.line,
                        "\"refresh_rate_limit\" must be {\"count\": N, \"window\": SECONDS}: a whole count of at least "
                            + "1, a window of more than 0 and at most 86400 seconds.")
                }
                provider.refreshRateLimit = RateLimit(count: Int(countValue), window: windowValue)
            }
            if let flag = field["revocation_token_in_query"] {
                guard case .bool(let value) = flag.value else {
                    throw fail(flag.line, "\"revocation_token_in_query\" must be true or false.")
                }
                provider.revocationTokenInQuery = value
            }
            providers.append(provider)
        }
        return providers
    }
}
