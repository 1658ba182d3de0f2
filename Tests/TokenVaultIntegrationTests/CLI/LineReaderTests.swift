import Foundation
import TokenVaultCommandSupport
import XCTest

/// `LineReader`, what `import` reads its lines with: memory bounded by the line limit, whatever the input.
final class LineReaderTests: XCTestCase {
    /// The lines of `input`, read through a pipe with a limit of `limit` bytes, and the most bytes ever buffered.
    func lines(_ input: [UInt8], limit: Int) throws -> (lines: [LineReader.Line], peak: Int) {
        let pipe = Pipe()
        let writer = Thread {
            pipe.fileHandleForWriting.write(Data(input))
            try? pipe.fileHandleForWriting.close()
        }
        writer.start()
        var reader = LineReader(descriptor: pipe.fileHandleForReading.fileDescriptor, limit: limit)
        var lines: [LineReader.Line] = []
        var peak = 0
        while let line = try reader.next() {
            lines.append(line)
            peak = max(peak, reader.bufferedBytes)
        }
        return (lines, peak)
    }

    func testLinesBreaksAndTheLastLineWithoutABreak() throws {
        let (lines, _) = try lines(Array("a\nbb\r\n\nlast".utf8), limit: 10)
        XCTAssertEqual(lines, [.text(Array("a".utf8)), .text(Array("bb".utf8)), .text([]), .text(Array("last".utf8))])
        XCTAssertEqual(try self.lines([], limit: 10).lines, [])
    }

    func testALineOverTheLimitIsReportedByItsLengthAndNotHeld() throws {
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 5_000_000)
        let input = Array("ok\n".utf8) + long + Array("\nafter\n".utf8) + long
        let (lines, peak) = try lines(input, limit: 1000)
        XCTAssertEqual(
            lines, [.text(Array("ok".utf8)), .tooLong(5_000_000), .text(Array("after".utf8)), .tooLong(5_000_000)])
        XCTAssertLessThan(peak, 1000 + 2 * 65_536, "a 5 MB line was never held whole")
        XCTAssertEqual(
            try self.lines(Array("0123456789\n01234567890\n".utf8), limit: 10).lines,
            [
                .text(Array("0123456789".utf8)), .tooLong(11),
            ])
    }
}
