#!/usr/bin/env python3
"""Fails when a file of the TokenVault library refers to a layer above its own.

The library's folders are layers (docs/architecture.md):

    Service  ->  OAuth, Rotation  ->  Storage, Crypto  ->  Core

A file may use what its own folder and the folders below it declare, never what a folder beside or above it
declares. The check reads the Swift sources as text: it collects the types, free functions and constants each
folder declares, and the members each folder adds to types declared elsewhere (`extension String { ... }`), then
looks for those names in the code of every other folder, with comments and string literals left out (but not
the code inside string interpolations). A name that a lower folder declares too is ambiguous and not reported.

    usage: .ci/check-layers.py [Sources/TokenVault]     exit 0: clean; 1: backward references, listed
"""
import os
import re
import sys

RANK = {"Core": 0, "Crypto": 1, "Storage": 1, "OAuth": 2, "Rotation": 2, "Service": 3}


def allowed(user, owner):
    return user == owner or RANK[owner] < RANK[user]


def strip(source):
    """The code without comments and string literals; interpolations (\\( ... )) are kept, as code."""
    out, i, n = [], 0, len(source)
    stack = []  # open string literals: (delimiter, paren depth of the interpolation we are in, or None)
    depth = 0
    while i < n:
        c = source[i]
        in_string = stack and stack[-1][1] is None
        if in_string:
            delim = stack[-1][0]
            if c == "\\" and source.startswith("\\(", i):
                stack[-1] = (delim, depth)
                out.append(" (")
                depth += 1
                i += 2
                continue
            if c == "\\":
                i += 2
                continue
            if source.startswith(delim, i):
                stack.pop()
                out.append('""')
                i += len(delim)
                continue
            out.append("\n" if c == "\n" else " ")
            i += 1
            continue
        if source.startswith("//", i):
            j = source.find("\n", i)
            i = n if j < 0 else j
            continue
        if source.startswith("/*", i):
            j = source.find("*/", i)
            j = n if j < 0 else j + 2
            out.append("\n" * source.count("\n", i, j))
            i = j
            continue
        if c == '"':
            delim = '"""' if source.startswith('"""', i) else '"'
            stack.append((delim, None))
            i += len(delim)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if stack and stack[-1][1] == depth:  # the end of an interpolation: back inside the string
                stack[-1] = (stack[-1][0], None)
        out.append(c)
        i += 1
    return "".join(out)


TYPE = re.compile(r"^(?:(?:public|package|internal|fileprivate|private|final|indirect)\s+)*"
                  r"(?:class|struct|enum|actor|protocol|typealias)\s+([A-Za-z_]\w*)", re.M)
TOP = re.compile(r"^(?:(?:public|package|internal|fileprivate|private|nonisolated)\s+)*(?:func|let|var)\s+([A-Za-z_]\w*)",
                 re.M)
EXTENSION = re.compile(r"^(?:(?:public|package|internal|fileprivate|private)\s+)*extension\s+([A-Za-z_][\w.]*)[^{]*\{",
                       re.M)
MEMBER = re.compile(r"\b(?:func|var|let|case)\s+([A-Za-z_]\w*)")


def block(code, start):
    """The text of the brace block that opens at `start` (the index of '{'), without its braces."""
    depth, i = 0, start
    while i < len(code):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return code[start + 1:i]
        i += 1
    return code[start + 1:]


def depth_one(body):
    """`body` with everything nested deeper than its first level blanked out."""
    out, depth = [], 0
    for c in body:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        out.append(c if depth == 0 or c in "{}\n" else " ")
    return "".join(out)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "Sources/TokenVault"
    files = {}
    for layer in RANK:
        folder = os.path.join(root, layer)
        if not os.path.isdir(folder):
            continue
        for dirpath, _, names in os.walk(folder):
            for name in sorted(names):
                if name.endswith(".swift"):
                    path = os.path.join(dirpath, name)
                    with open(path, encoding="utf-8") as handle:
                        files[path] = (layer, strip(handle.read()))
    strays = [
        os.path.join(dirpath, name) for dirpath, _, names in os.walk(root) for name in names
        if name.endswith(".swift") and os.path.join(dirpath, name) not in files
    ]
    if strays:
        print("Swift files outside the layer folders (%s):" % ", ".join(RANK))
        for path in strays:
            print("  " + path)
        return 1

    types, members, declared = {}, {}, {}  # name -> set of layers
    for path, (layer, code) in files.items():
        for name in TYPE.findall(code) + TOP.findall(code):
            types.setdefault(name, set()).add(layer)
    for path, (layer, code) in files.items():
        for name in MEMBER.findall(code):
            declared.setdefault(name, set()).add(layer)
        for match in EXTENSION.finditer(code):
            extended = match.group(1).split(".")[0]
            if layer in types.get(extended, set()):
                continue  # its own type: its members go with it
            for name in MEMBER.findall(depth_one(block(code, match.end() - 1))):
                members.setdefault(name, set()).add(layer)

    problems = []
    for path, (layer, code) in sorted(files.items()):
        for number, line in enumerate(code.split("\n"), 1):
            for name in set(re.findall(r"\b[A-Za-z_]\w*\b", line)):
                owners = types.get(name)
                if owners and not any(allowed(layer, owner) for owner in owners):
                    problems.append("%s:%d: %s uses %s from %s" % (
                        path, number, layer, name, "/".join(sorted(owners))))
            for name in set(re.findall(r"\.([A-Za-z_]\w*)\b", line)):
                owners = members.get(name)
                ambiguous = name in types or any(allowed(layer, other) for other in declared.get(name, ()))
                if owners and not ambiguous and not any(allowed(layer, owner) for owner in owners):
                    problems.append("%s:%d: %s uses .%s, added in %s" % (
                        path, number, layer, name, "/".join(sorted(owners))))
    if problems:
        print("Backward references between layers (%s):" % " -> ".join(
            ["Service", "OAuth/Rotation", "Storage/Crypto", "Core"]))
        for problem in problems:
            print("  " + problem)
        return 1
    print("layers: %d files, no backward reference" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
