#!/usr/bin/env python3
"""Fails when a public symbol of a module has no doc comment of its own.

Reads the symbol graph that `swift build -Xswiftc -emit-symbol-graph` writes. Implementations of the standard
library's protocol requirements (description, ==, hash(into:), Codable's init(from:) and encode(to:), …) and
symbols the compiler synthesised (no source location) inherit their documentation and are not reported.

    usage: .ci/check-doc-comments.py MODULE.symbols.json
"""
import json
import sys

INHERITED = {
    "description", "debugDescription", "customMirror", "hashValue", "hash(into:)", "==(_:_:)", "<(_:_:)",
    "init(from:)", "encode(to:)", "init(rawValue:)", "rawValue", "allCases",
}


def main():
    graph = json.load(open(sys.argv[1], encoding="utf-8"))
    missing = []
    for symbol in graph["symbols"]:
        if symbol["accessLevel"] != "public" or symbol.get("docComment"):
            continue
        name = symbol["pathComponents"][-1]
        location = symbol.get("location")
        if name in INHERITED or location is None:
            continue
        path = location["uri"].split("/Sources/", 1)[-1]
        line = location["position"]["line"] + 1
        missing.append("Sources/%s:%d: %s has no doc comment" % (path, line, ".".join(symbol["pathComponents"])))
    if missing:
        print("Public symbols without a doc comment (%d):" % len(missing))
        for entry in sorted(missing):
            print("  " + entry)
        return 1
    print("docs: every public symbol has a doc comment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
