import Foundation

#if FUZZING
import CLibFuzzer
#endif

/// What the fuzz targets share: their entry point, running inputs without libFuzzer, and failing loudly.
package enum Fuzz {
    /// A fuzz target's `main`: libFuzzer's driver with `testOneInput` in a `-D FUZZING` build (the arguments are
    /// libFuzzer's), otherwise ``replay(_:_:)`` of the inputs named on the command line with `run`.
    package static func main(
        _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt, replay run: ([UInt8]) -> Void
    ) -> Never {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
        #else
        replay(CommandLine.arguments, run)
        exit(0)
        #endif
    }

    /// Runs `body` once on each file named in `arguments` (a directory: on each file in it), for an ordinary build
    /// with no libFuzzer: replaying a crash's input under a debugger, or the corpus as a quick check. Exits 2 when
    /// no input is given or one cannot be read.
    package static func replay(_ arguments: [String], _ body: ([UInt8]) -> Void) {
        let program = URL(fileURLWithPath: arguments.first ?? "fuzz").lastPathComponent
        let paths = arguments.dropFirst().flatMap(files)
        guard !paths.isEmpty else {
            FileHandle.standardError.write(
                Data("usage: \(program) INPUT|DIRECTORY...  (runs each input once; .ci/fuzz.sh fuzzes)\n".utf8))
            exit(2)
        }
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("\(program): cannot read \(path)\n".utf8))
                exit(2)
            }
            body(Array(data))
        }
        print("\(program): \(paths.count) input\(paths.count == 1 ? "" : "s") ran without a crash")
    }

    private static func files(_ path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [path]
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { "\(path)/\($0)" }
    }

    /// Stops the process (a crash, for libFuzzer) when a property the target checks does not hold. Says which,
    /// never with a token: the input file holds everything needed to reproduce it.
    package static func require(
        _ condition: @autoclosure () -> Bool, _ property: @autoclosure () -> String, file: StaticString = #fileID,
        line: UInt = #line
    ) {
        if !condition() { fatalError("fuzz property does not hold: \(property())", file: file, line: line) }
    }
}

extension Fuzz {
    /// Whether `haystack` contains `needle`, byte for byte. (Foundation's `String.contains` compares canonically
    /// equivalent text, and traps on some pairs: `"caf\u{E9}".contains("cafe\u{301}\0\0")`, found by the
    /// open-row target in its own check.)
    package static func bytes(_ haystack: [UInt8], contain needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { start in
            haystack[start..<start + needle.count].elementsEqual(needle)
        }
    }

    /// The UTF-8 of `text` with every occurrence of each of `parts` (longest first) replaced by 0xFF, a byte
    /// that UTF-8 never holds: a message with the ids it names taken out.
    package static func utf8(of text: String, without parts: [String]) -> [UInt8] {
        var bytes = Array(text.utf8)
        for part in parts.map({ Array($0.utf8) }).sorted(by: { $0.count > $1.count }) where !part.isEmpty {
            var out: [UInt8] = []
            var index = 0
            while index < bytes.count {
                if bytes.count - index >= part.count, bytes[index..<index + part.count].elementsEqual(part) {
                    out.append(0xff)
                    index += part.count
                } else {
                    out.append(bytes[index])
                    index += 1
                }
            }
            bytes = out
        }
        return bytes
    }
}
