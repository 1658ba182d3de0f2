// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "token-vault",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TokenVault", targets: ["TokenVault"]),
        // The vault and its background refresher as swift-service-lifecycle services.
        .library(name: "TokenVaultServiceLifecycle", targets: ["TokenVaultServiceLifecycle"]),
        // A throwaway PostgreSQL and a local OAuth token endpoint, for the tests of services that use the vault.
        .library(name: "TokenVaultTesting", targets: ["TokenVaultTesting"]),
        .executable(name: "token-vault", targets: ["TokenVaultCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"]), .brew(["libsodium"]), .yum(["libsodium-devel"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"]), .yum(["libpq-devel"])]
        ),
        // The CLI's process hardening (prctl is variadic, so Swift cannot call it).
        .systemLibrary(name: "CProcess"),
        // The library. Its folders are layers that depend one way, Service → OAuth / Rotation → Storage / Crypto →
        // Core (docs/architecture.md); CI compiles them layer by layer to hold it (.ci/check-layers-build.sh).
        .target(
            name: "TokenVault",
            dependencies: [
                "CSodium",
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "TokenVaultServiceLifecycle",
            dependencies: [
                "TokenVault",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "TokenVaultTesting",
            dependencies: [
                "TokenVault",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What the two command-line tools share: configuration from the environment, exit codes, the hints
        // that go with each error code, progress and Ctrl-C handling. Not a product.
        .target(
            name: "TokenVaultCommandSupport",
            dependencies: [
                "TokenVault",
                "CProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `token-vault`: what operators ship. No benchmark or test code.
        .executableTarget(
            name: "TokenVaultCLI",
            dependencies: [
                "TokenVault",
                "TokenVaultCommandSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `token-vault-bench` (also run as `token-vault bench`): the vault against raw libsodium and libpq.
        .executableTarget(
            name: "token-vault-bench",
            dependencies: [
                "TokenVault",
                "TokenVaultTesting",
                "TokenVaultCommandSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/TokenVaultBench"
        ),
        // Test helpers, built with the package but not offered to its users.
        .executableTarget(
            name: "token-vault-test-postgres",
            dependencies: ["TokenVaultTesting"],
            path: "Sources/TokenVaultTestPostgres"
        ),
        .executableTarget(
            name: "token-vault-test-stampede",
            dependencies: ["TokenVault"],
            path: "Sources/TokenVaultTestStampede"
        ),
        // libFuzzer targets (Tests/Fuzz/README.md): not products, linked into nothing that ships. An ordinary build
        // makes each a program that runs the inputs named on its command line once; `.ci/fuzz.sh` builds them with
        // `-sanitize=fuzzer,address -D FUZZING` into .build-fuzz, where libFuzzer drives them.
        .systemLibrary(name: "CLibFuzzer", path: "Tests/Fuzz/CLibFuzzer"),
        .target(name: "TokenVaultFuzzSupport", dependencies: ["TokenVault", "CLibFuzzer"], path: "Tests/Fuzz/Support"),
        .executableTarget(
            name: "token-vault-fuzz-token-response",
            dependencies: ["TokenVault", "TokenVaultFuzzSupport"],
            path: "Tests/Fuzz/TokenResponse"
        ),
        .executableTarget(
            name: "token-vault-fuzz-import-line",
            dependencies: ["TokenVault", "TokenVaultFuzzSupport"],
            path: "Tests/Fuzz/ImportLine"
        ),
        .executableTarget(
            name: "token-vault-fuzz-open-row",
            dependencies: ["TokenVault", "TokenVaultFuzzSupport"],
            path: "Tests/Fuzz/OpenRow"
        ),
        // Fast tests that need no database, no network and no subprocess: sealing and its vectors, keys and
        // keyrings, token endpoint classification over a scripted transport, errors, the bench's statistics.
        .testTarget(
            name: "TokenVaultTests",
            dependencies: ["TokenVault", "token-vault-bench"]
        ),
        // Tests against real parts they start themselves: a throwaway PostgreSQL on a private socket, an OAuth
        // token endpoint on 127.0.0.1, the built token-vault binaries.
        .testTarget(
            name: "TokenVaultIntegrationTests",
            dependencies: [
                "TokenVault",
                "TokenVaultTesting",
                "TokenVaultCLI",
                "TokenVaultCommandSupport",
                "TokenVaultServiceLifecycle",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                "token-vault-bench",
                "token-vault-test-postgres",
                "token-vault-test-stampede",
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
