import CProcess
import Foundation
import TokenVault

#if canImport(Glibc)
import Glibc
#endif

/// One program run without a shell (posix_spawnp), in a process group of its own, with a deadline: the one place
/// where the CLI starts another program. Its standard output is read into wiped memory, up to a limit; the end of
/// its standard error is kept for messages. On the deadline, or when the output passes the limit, the whole group
/// is killed.
package enum ChildProcess {
    package enum Ending: Equatable, Sendable {
        /// `lost`: the program could not be waited for (another part of the process reaped it), so how it ended
        /// is unknown and its output is not used.
        case exited(Int32), signalled(Int32), timedOut, outputTooLarge, lost
    }

    /// Why the program could not be started: an `errno` value (ENOENT, EACCES, …).
    package struct StartFailure: Error {
        package let code: Int32
        package var reason: String { String(cString: strerror(code)) }
    }

    package struct Outcome {
        package var ending: Ending
        /// What the program printed on stdout (empty when it was not captured), in wiped memory.
        package var output: Secret
        /// The last bytes it printed on stderr (when captured).
        package var errorTail: [UInt8]
    }

    /// Runs `words` (program and arguments) with `environment`.
    /// - Parameters:
    ///   - input: bytes written to its stdin, which is then closed; nil: stdin is /dev/null.
    ///   - captureOutput: read stdout (up to `outputLimit` bytes) and stderr; false: both are inherited.
    /// - Returns: the outcome, or the `errno` of a failed start.
    package static func run(
        _ words: [String], environment: [String: String], input: UnsafeRawBufferPointer? = nil,
        captureOutput: Bool, outputLimit: Int = 64 * 1024, errorLimit: Int = 8 * 1024, timeout: Duration
    ) -> Result<Outcome, StartFailure> {
        let deadline = ContinuousClock.now + timeout
        var outputPipe: [Int32] = [-1, -1]
        var errorPipe: [Int32] = [-1, -1]
        var inputPipe: [Int32] = [-1, -1]
        defer { for fd in outputPipe + errorPipe + inputPipe where fd >= 0 { close(fd) } }
        if captureOutput {
            guard token_vault_pipe(&outputPipe) == 0, token_vault_pipe(&errorPipe) == 0 else {
                return .failure(StartFailure(code: errno))
            }
        }
        if input != nil {
            guard token_vault_pipe(&inputPipe) == 0 else { return .failure(StartFailure(code: errno)) }
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, inputPipe[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        if captureOutput {
            posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
            posix_spawn_file_actions_adddup2(&actions, errorPipe[1], 2)
        }
        _ = token_vault_spawn_close_from(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = words.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let started = posix_spawnp(&pid, words[0], &actions, &attributes, argv, envp)
        guard started == 0 else { return .failure(StartFailure(code: started)) }
        // The child's ends: once closed here, end of file on a pipe means the program (and whatever it started)
        // closed it.
        if captureOutput {
            close(outputPipe[1])
            close(errorPipe[1])
            outputPipe[1] = -1
            errorPipe[1] = -1
        }
        if let input {
            close(inputPipe[0])
            inputPipe[0] = -1
            write(all: input, to: inputPipe[1])
            close(inputPipe[1])
            inputPipe[1] = -1
        }

        var ending: Ending? = nil
        var length = 0
        var errorTail: [UInt8] = []
        let capacity = captureOutput ? outputLimit + 1 : 0
        let buffer = SecureBuffer.make(
            count: capacity,
            filling: { output in
                guard captureOutput else { return }
                var fds = [
                    pollfd(fd: outputPipe[0], events: Int16(POLLIN), revents: 0),
                    pollfd(fd: errorPipe[0], events: Int16(POLLIN), revents: 0),
                ]
                var chunk = [UInt8](repeating: 0, count: 4096)
                while fds.contains(where: { $0.fd >= 0 }) && ending == nil {
                    let left = ContinuousClock.now.duration(to: deadline)
                    guard left > .zero else {
                        ending = .timedOut
                        break
                    }
                    let (seconds, attoseconds) = left.components
                    let milliseconds = Int32(min(1000, seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1))
                    let ready = poll(&fds, nfds_t(fds.count), milliseconds)
                    if ready < 0 && errno == EINTR { continue }
                    if ready < 0 { break }
                    if fds[0].revents != 0 {
                        let got = read(fds[0].fd, output.baseAddress! + length, output.count - length)
                        if got > 0 {
                            length += got
                            if length > outputLimit { ending = .outputTooLarge }
                        } else if got == 0 || (errno != EINTR && errno != EAGAIN) {
                            fds[0].fd = -1
                        }
                    }
                    if fds[1].revents != 0 {
                        let got = chunk.withUnsafeMutableBytes { read(fds[1].fd, $0.baseAddress!, $0.count) }
                        if got > 0 {
                            errorTail.append(contentsOf: chunk[0..<got])
                            if errorTail.count > errorLimit { errorTail.removeFirst(errorTail.count - errorLimit) }
                        } else if got == 0 || (errno != EINTR && errno != EAGAIN) {
                            fds[1].fd = -1
                        }
                    }
                }
            })

        var status: Int32 = 0
        if ending == nil {
            // The streams are closed; the program itself must still end before the deadline.
            while true {
                let reaped = waitpid(pid, &status, WNOHANG)
                if reaped == pid { break }
                if reaped < 0 && errno != EINTR {
                    ending = .lost
                    break
                }
                if ContinuousClock.now >= deadline {
                    ending = .timedOut
                    break
                }
                usleep(2000)
            }
        }
        if let ending, ending == .timedOut || ending == .outputTooLarge {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        let result = ending ?? ((status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f))
        let output = buffer.withUnsafeBytes { bytes in
            Secret(
                storage: SecureBuffer.make(
                    copying: UnsafeRawBufferPointer(rebasing: bytes[0..<min(length, bytes.count)])))
        }
        return .success(Outcome(ending: result, output: output, errorTail: errorTail))
    }

    /// Writes all of `bytes` to `fd`, retrying partial writes and EINTR; false when it stops early (the reader is
    /// gone, the disk is full). Feeding a program, the caller ignores that: its exit status says what happened.
    @discardableResult
    package static func write(all bytes: UnsafeRawBufferPointer, to fd: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let wrote = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if wrote < 0 && errno == EINTR { continue }
            if wrote <= 0 { return false }
            offset += wrote
        }
        return true
    }
}
