/// The schema, as numbered migrations recorded in `token_vault_migrations`.
///
/// They run in one transaction under a transaction-scoped advisory lock, so that instances starting together
/// apply each migration once; running them again is a no-op.
enum Migrations {
    struct Migration: Sendable {
        let version: Int
        let name: String
        let sql: String
    }

    /// `pg_advisory_xact_lock` key: "tokenvlt" as a big-endian int64, shared with nothing else.
    static let lockKey: Int64 = 0x746f_6b65_6e76_6c74

    static let all: [Migration] = [
        Migration(
            version: 1, name: "create oauth_tokens",
            sql: """
                CREATE TABLE oauth_tokens (
                    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                    client_id text NOT NULL,
                    provider text NOT NULL,
                    access_token_ciphertext bytea,
                    access_token_nonce bytea,
                    refresh_token_ciphertext bytea NOT NULL,
                    refresh_token_nonce bytea NOT NULL,
                    key_id text NOT NULL,
                    token_expiry timestamptz,
                    scopes text,
                    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now(),
                    version bigint NOT NULL DEFAULT 1,
                    CONSTRAINT oauth_tokens_access_token_pair
                        CHECK ((access_token_ciphertext IS NULL) = (access_token_nonce IS NULL))
                );
                CREATE UNIQUE INDEX oauth_tokens_client_provider_key ON oauth_tokens (client_id, provider);
                CREATE INDEX oauth_tokens_key_id_idx ON oauth_tokens (key_id);
                COMMENT ON TABLE oauth_tokens IS
                    'token-vault: access and refresh tokens sealed with crypto_secretbox; see docs/ciphertext-format.md';
                """),
        Migration(
            version: 2, name: "refresh bookkeeping",
            sql: """
                ALTER TABLE oauth_tokens
                    ADD COLUMN needs_reauthorization boolean NOT NULL DEFAULT false,
                    ADD COLUMN last_refresh_error text,
                    ADD COLUMN last_refreshed_at timestamptz,
                    ADD COLUMN refresh_history timestamptz[] NOT NULL DEFAULT '{}';
                COMMENT ON COLUMN oauth_tokens.refresh_history IS
                    'token-vault: when the provider was asked for a refresh (last hour), for its rate limit';
                """),
        Migration(
            version: 3, name: "refresh leases",
            sql: """
                CREATE TABLE token_vault_refresh_leases (
                    client_id text NOT NULL,
                    provider text NOT NULL,
                    holder uuid NOT NULL,
                    claimed_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL,
                    PRIMARY KEY (client_id, provider)
                );
                COMMENT ON TABLE token_vault_refresh_leases IS
                    'token-vault: who is refreshing which token at its provider, until when (docs/refresh.md)';
                CREATE TABLE token_vault_fallback_refreshes (
                    provider text PRIMARY KEY,
                    refresh_history timestamptz[] NOT NULL DEFAULT '{}'
                );
                COMMENT ON TABLE token_vault_fallback_refreshes IS
                    'token-vault: requests made with a provider''s fallback refresh token for a client with no row yet, '
                    'for its rate limit';
                ALTER TABLE oauth_tokens ADD COLUMN last_refresh_failed_at timestamptz;
                """),
        Migration(
            version: 4, name: "accounts servers and authorizations",
            sql: """
                ALTER TABLE oauth_tokens ADD COLUMN accounts_server text;
                COMMENT ON COLUMN oauth_tokens.accounts_server IS
                    'token-vault: the account''s own accounts server (an origin such as https://accounts.zoho.eu) for '
                    'refresh and revocation; NULL: the provider''s default';
                CREATE TABLE token_vault_authorizations (
                    selector bytea PRIMARY KEY,
                    validator_hash bytea NOT NULL,
                    client_id text NOT NULL,
                    provider text NOT NULL,
                    redirect_uri text NOT NULL,
                    scopes text,
                    verifier_ciphertext bytea,
                    verifier_nonce bytea,
                    key_id text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL,
                    used_at timestamptz,
                    CONSTRAINT token_vault_authorizations_verifier_pair
                        CHECK ((verifier_ciphertext IS NULL) = (verifier_nonce IS NULL))
                );
                CREATE INDEX token_vault_authorizations_expires_idx ON token_vault_authorizations (expires_at);
                COMMENT ON TABLE token_vault_authorizations IS
                    'token-vault: authorizations in progress (state, PKCE verifier sealed); docs/connecting.md';
                """),
        Migration(
            version: 5, name: "audit trail",
            sql: """
                CREATE TABLE token_vault_audit_events (
                    chain text COLLATE "C" NOT NULL,
                    seq bigint NOT NULL,
                    at timestamptz NOT NULL,
                    kind text NOT NULL,
                    client_id text,
                    provider text,
                    key_id text,
                    outcome text NOT NULL,
                    application text NOT NULL,
                    host text NOT NULL,
                    pid integer NOT NULL,
                    actor text,
                    details text NOT NULL,
                    mac_key_id text NOT NULL,
                    mac bytea NOT NULL,
                    PRIMARY KEY (chain, seq)
                );
                CREATE INDEX token_vault_audit_events_at_idx ON token_vault_audit_events USING brin (at);
                COMMENT ON TABLE token_vault_audit_events IS
                    'token-vault: append-only audit trail, chained and authenticated per chain (docs/audit.md)';
                CREATE TABLE token_vault_audit_heads (
                    chain text COLLATE "C" PRIMARY KEY,
                    seq bigint NOT NULL,
                    digest bytea NOT NULL,
                    mac_key_id text NOT NULL,
                    mac bytea NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT now()
                ) WITH (fillfactor = 50);
                COMMENT ON TABLE token_vault_audit_heads IS
                    'token-vault: the last event of each audit chain, authenticated, so that a deleted tail is noticed';
                CREATE TABLE token_vault_audit_anchors (
                    chain text COLLATE "C" PRIMARY KEY,
                    seq bigint NOT NULL,
                    digest bytea NOT NULL,
                    mac_key_id text NOT NULL,
                    mac bytea NOT NULL,
                    pruned_at timestamptz NOT NULL DEFAULT now()
                );
                COMMENT ON TABLE token_vault_audit_anchors IS
                    'token-vault: where each pruned audit chain now starts, authenticated (docs/audit.md)';
                """),
        Migration(
            version: 6, name: "audit heads in the rows",
            sql: """
                ALTER TABLE token_vault_audit_events DROP CONSTRAINT token_vault_audit_events_pkey;
                ALTER TABLE oauth_tokens ADD COLUMN audit_seq bigint, ADD COLUMN audit_digest bytea,
                    ADD COLUMN audit_mac_key_id text, ADD COLUMN audit_mac bytea,
                    ADD CONSTRAINT oauth_tokens_audit_head CHECK ((audit_seq IS NULL) = (audit_digest IS NULL)
                        AND (audit_seq IS NULL) = (audit_mac_key_id IS NULL) AND (audit_seq IS NULL) = (audit_mac IS NULL));
                UPDATE oauth_tokens t SET audit_seq = h.seq, audit_digest = h.digest, audit_mac_key_id = h.mac_key_id,
                    audit_mac = h.mac
                FROM token_vault_audit_heads h WHERE h.chain = \(rowChainSQL("t"));
                DELETE FROM token_vault_audit_heads h USING oauth_tokens t WHERE h.chain = \(rowChainSQL("t"));
                COMMENT ON COLUMN oauth_tokens.audit_seq IS
                    'token-vault: the head of the row''s audit chain (with audit_digest, audit_mac_key_id, audit_mac); '
                    'token_vault_audit_heads holds the heads of chains without a row (docs/audit.md)';
                """),
    ]

    /// The audit chain of an `oauth_tokens` row in SQL, from the columns of `table` (an alias):
    /// ``AuditEvent/chain(client:provider:)``.
    static func rowChainSQL(_ table: String) -> String {
        rowChainSQL(client: "\(table).client_id", provider: "\(table).provider")
    }

    /// ``AuditEvent/chain(client:provider:)`` in SQL, from text expressions for the client id and the provider; the
    /// client id's length in UTF-8 bytes whatever the database's encoding.
    static func rowChainSQL(client: String, provider: String) -> String {
        "('row:' || octet_length(convert_to(\(client), 'UTF8')) || ':' || \(client) || '/' || \(provider))"
    }

    /// The role layout of docs/audit.md for the application's role `role` (already quoted as an identifier): it
    /// may read and write the tokens and the refresh bookkeeping, append audit events and move chain heads, but
    /// never change or delete an event or a prune anchor. The owner (who runs `migrate` and `audit prune`) keeps
    /// every right.
    static func grants(to role: String) -> String {
        """
        GRANT SELECT, INSERT, UPDATE, DELETE ON oauth_tokens, token_vault_refresh_leases,
            token_vault_fallback_refreshes, token_vault_authorizations TO \(role);
        GRANT SELECT ON token_vault_migrations TO \(role);
        REVOKE ALL ON token_vault_audit_events, token_vault_audit_heads, token_vault_audit_anchors FROM \(role);
        GRANT SELECT, INSERT ON token_vault_audit_events TO \(role);
        GRANT SELECT, INSERT, UPDATE, DELETE ON token_vault_audit_heads TO \(role);
        GRANT SELECT ON token_vault_audit_anchors TO \(role);
        """
    }

    static var latestVersion: Int { all.map(\.version).max() ?? 0 }

    /// Applies the missing migrations; returns the versions applied.
    static func apply(on connection: PGConnection) throws(VaultError) -> [Int] {
        try connection.execute(script: "BEGIN")
        do {
            _ = try connection.query("SELECT pg_advisory_xact_lock($1::bigint)", [.text(String(lockKey))])
            try connection.execute(
                script: """
                    CREATE TABLE IF NOT EXISTS token_vault_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """)
            let result = try connection.query("SELECT version FROM token_vault_migrations")
            let applied = Set((0..<result.rowCount).compactMap { result.integer($0, 0) }.map(Int.init))
            var done: [Int] = []
            for migration in all where !applied.contains(migration.version) {
                try connection.execute(script: migration.sql)
                _ = try connection.query(
                    "INSERT INTO token_vault_migrations (version, name) VALUES ($1::integer, $2)",
                    [.text(String(migration.version)), .text(migration.name)])
                done.append(migration.version)
            }
            try connection.execute(script: "COMMIT")
            return done
        } catch {
            try? connection.execute(script: "ROLLBACK")
            throw error
        }
    }

    /// Creates the PostgreSQL schema that ``VaultConfiguration/schema`` names when it does not exist yet. The name
    /// was checked to be a plain lower-case identifier (`ConnectionPool.isValidSchema`).
    /// - Throws: `.databaseConfiguration` when it is missing and this role may not create it, with the statement
    ///   that an administrator runs instead.
    static func createSchemaIfMissing(_ schema: String, on connection: PGConnection) throws(VaultError) {
        let exists = try connection.query("SELECT to_regnamespace($1) IS NOT NULL", [.text(schema)])
        guard exists.bool(0, 0) != true else { return }
        do {
            try connection.execute(script: "CREATE SCHEMA IF NOT EXISTS \"\(schema)\"")
        } catch  where error.sqlState == "42501" {
            throw VaultError(
                .databaseConfiguration,
                "the vault's schema '\(schema)' (VaultConfiguration.schema) does not exist, and this database role "
                    + "may not create it. Have an administrator run CREATE SCHEMA \(schema) AUTHORIZATION "
                    + "<the vault's role>, then migrate again.", sqlState: error.sqlState)
        }
    }

    /// The highest applied version, or 0 when the vault's tables do not exist yet.
    static func currentVersion(on connection: PGConnection) throws(VaultError) -> Int {
        let exists = try connection.query("SELECT to_regclass('token_vault_migrations') IS NOT NULL")
        guard exists.bool(0, 0) == true else { return 0 }
        let result = try connection.query("SELECT coalesce(max(version), 0)::bigint FROM token_vault_migrations")
        return Int(result.integer(0, 0) ?? 0)
    }
}
