#!/usr/bin/env bash
# The TokenVault library's documentation: every public symbol has a doc comment, and the DocC catalog
# (Sources/TokenVault/TokenVault.docc) builds with no warning. Writes the archive to .build/docs.
#   usage: bash .ci/check-docs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/docs
# The compiler writes the symbol graphs when it compiles the module, so they stay beside that build.
graphs=.build-docs/symbol-graphs
rm -rf "$out"
mkdir -p "$graphs" "$out/symbol-graphs"
swift build --scratch-path .build-docs --target TokenVault \
    -Xswiftc -emit-symbol-graph -Xswiftc -emit-symbol-graph-dir -Xswiftc "$PWD/$graphs" \
    -Xswiftc -symbol-graph-minimum-access-level -Xswiftc public
cp "$graphs/TokenVault.symbols.json" "$out/symbol-graphs/"
python3 .ci/check-doc-comments.py "$out/symbol-graphs/TokenVault.symbols.json"
docc convert Sources/TokenVault/TokenVault.docc \
    --additional-symbol-graph-dir "$out/symbol-graphs" \
    --fallback-display-name TokenVault --fallback-bundle-identifier token-vault.TokenVault \
    --warnings-as-errors --output-path "$out/TokenVault.doccarchive"
echo "docs: DocC catalog built with no warning ($out/TokenVault.doccarchive)"
