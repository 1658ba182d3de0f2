#!/bin/bash
# Reruns every test that docs/threat-model.md cites for a guarantee, and nothing else.
#   bash .ci/threat-model.sh
# Needs PostgreSQL and PgBouncer installed (the integration tests start their own); under a minute once built.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=(
    # A copy of the database or a backup
    CryptoTamperTests CryptoContextSwapTests DatabaseTamperTests
    # Someone who can write to the database
    AuditTamperTests AuditChainTests AuditCLITests AuditTrailTests/testAChangeWhoseEventFailsIsNotMade
    AuditTrailTests/testAChainOutlivesItsRowAndContinuesWhenTheRowIsStoredAgain
    # Someone who reads logs, crash output or process listings
    CryptoRedactionTests CryptoKeyFileTests VaultMetricsTests VaultTracingTests
    CLIEndToEndTests/testTheCLITurnsItsCoreDumpsOff CLIEndToEndTests/testConfigurationMistakesNeverEchoThePassword
    AuditTrailTests/testPutRefreshFailuresDeleteAndVerifyEachLeaveTheirEvent CLIDoctorTests DoctorRuleTests
    # A pooler or proxy in the path
    PgBouncerTests
    # A hostile or broken provider
    SizeLimitTests RefreshTests/testARedirectIsNeverFollowed TokenEndpointClassificationTests
    ConnectingTests/testHostileAccountsServersAreRefusedBeforeAnythingIsSent AccountsServerTests
    ConnectingTests/testAStateIsSingleUseAcrossInstances
    ConnectingTests/testUnknownAlteredExpiredAndMismatchedStatesEachHaveTheirOwnCode
    ConnectingTests/testNoCodeStateVerifierOrTokenIsLogged
    # A concurrent process of the same service
    MultiProcessRefreshTests RefreshDueTests/testTwoRefreshersAndRequestPathsMakeOneProviderCallPerToken
    AuditTrailTests/testConcurrentWritersOfOneRowKeepItsChainIntact AuditHeadRaceTests
    # An operator mid-rotation
    CLIRotationTests/testSIGKILLAtRandomPointsThenAFinalRunLosesNothing
    CLIRotationTests/testAConcurrentPutDuringRotationSurvives
    RefreshLeaseTests/testAKeyRotationDuringARefreshDoesNotLoseItsTokens
    AuditTrailTests/testExchangeAndRotationAndDecryptFailureAreRecorded
    # Someone on the application host: keys kept in a KMS or HSM, handed over by a key command
    KeyCommandTests PKCS11KeyCommandTests
)
filter=$(IFS='|'; echo "${tests[*]}")
swift build --build-tests
swift test --skip-build --disable-swift-testing --filter "$filter"
