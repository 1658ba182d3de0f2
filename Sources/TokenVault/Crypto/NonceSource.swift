import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Random bytes for nonces, from the kernel's generator.
///
/// A nonce is public (it is stored next to its ciphertext) and needs only never to repeat under the same
/// subkey; with 24 random bytes a repeat is negligibly likely (about 2⁻⁹⁶ after 2⁴⁸ seals of one row and field).
/// Each nonce costs a `getrandom` system call through libsodium 1.0.18 (about 0.5 µs here, and the largest single
/// cost of a store). On Linux 6.11 and later the kernel also exports `getrandom` in its vDSO: the same generator,
/// run in the calling process without a system call (about 0.1 µs). glibc 2.41 and later use it for every
/// `getrandom()`; this does the same on older C libraries.
///
/// The vDSO keeps its generator state in memory the kernel provides the flags for (`MAP_DROPPABLE`): it is wiped
/// in a child after `fork`, and the kernel's generation counter forces a reseed when the kernel reseeds (including
/// after a virtual machine is cloned), so no two processes ever continue from the same generator state. (Nonces
/// already drawn into a `NoncePair` or `NonceBatch` are ordinary memory; neither outlives the store or bulk batch
/// it is for.) Each state serves one thread at a time; a caller that finds every state busy, or a system without the
/// vDSO function, uses libsodium's `randombytes_buf` instead. Keys never come from here: `VaultKey.generate` uses
/// libsodium.
package enum NonceSource {
    /// Where a buffer's bytes came from.
    package enum Origin: Equatable, Sendable {
        /// The kernel's vDSO `getrandom`.
        case vdso
        /// libsodium's `randombytes_buf` (the `getrandom` system call).
        case libsodium
    }

    /// Fills `buffer` with random bytes.
    package static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        #if os(Linux)
        fill(buffer, from: VDSOGetRandom.shared)
        #else
        Sodium.randomBytes(buffer)
        #endif
    }

    #if os(Linux)
    /// Fills `buffer` from `generator`, or from libsodium when there is none or every state is busy; returns which.
    @discardableResult
    package static func fill(_ buffer: UnsafeMutableRawBufferPointer, from generator: VDSOGetRandom?) -> Origin {
        guard buffer.count > 0 else { return .libsodium }
        if let generator, generator.fill(buffer) { return .vdso }
        Sodium.randomBytes(buffer)
        return .libsodium
    }
    #endif

    /// Whether nonces come from the vDSO (for `bench` and the tests).
    package static var usesVDSO: Bool {
        #if os(Linux)
        return VDSOGetRandom.shared != nil
        #else
        return false
        #endif
    }
}

#if os(Linux)
/// The kernel's vDSO `getrandom` (Linux 6.11+), with a few generator states, each taken by one thread at a time.
package final class VDSOGetRandom: @unchecked Sendable {
    // @unchecked: each state is used only while its `busy` flag is held; the rest is immutable.
    typealias Function =
        @convention(c) (UnsafeMutableRawPointer?, Int, UInt32, UnsafeMutableRawPointer?, Int) -> Int

    /// `struct vgetrandom_opaque_params` of the kernel's uapi.
    private struct Parameters {
        var stateSize: UInt32 = 0
        var mmapProtection: UInt32 = 0
        var mmapFlags: UInt32 = 0
        var reserved:
            (
                UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32
            ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    private let function: Function
    private let page: UnsafeMutableRawPointer
    private let pageSize: Int
    private let states: [UnsafeMutableRawPointer]
    private let stateSize: Int
    /// One flag per state, 1 while a thread uses it: taken with a compare-and-swap, never waited for. Each flag
    /// has a cache line of its own, so that threads using different states do not contend for one line.
    private let busy: UnsafeMutablePointer<Atomic<UInt32>>
    private static let flagStride = 64 / MemoryLayout<Atomic<UInt32>>.stride

    /// Nil when the running kernel has no vDSO `getrandom` or refuses its states.
    static let shared: VDSOGetRandom? = VDSOGetRandom(maximumStates: 16)

    init?(maximumStates: Int) {
        guard let vdso = dlopen("linux-vdso.so.1", RTLD_NOW | RTLD_NOLOAD) else { return nil }
        // x86-64 names it __vdso_getrandom; arm64, loongarch and others __kernel_getrandom.
        guard let symbol = dlsym(vdso, "__vdso_getrandom") ?? dlsym(vdso, "__kernel_getrandom") else { return nil }
        let function = unsafeBitCast(symbol, to: Function.self)
        var parameters = Parameters()
        // (NULL, 0, 0, &params, ~0) asks the kernel how to allocate states.
        guard withUnsafeMutableBytes(of: &parameters, { function(nil, 0, 0, $0.baseAddress, ~0) }) == 0,
            parameters.stateSize > 0
        else { return nil }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        // A state must not cross a page boundary: one page holds them all.
        let stateSize = (Int(parameters.stateSize) + 63) & ~63
        let count = min(maximumStates, pageSize / stateSize)
        guard count > 0 else { return nil }
        let page = mmap(
            nil, pageSize, Int32(bitPattern: parameters.mmapProtection), Int32(bitPattern: parameters.mmapFlags), -1, 0)
        guard let page, page != MAP_FAILED else { return nil }
        self.function = function
        self.stateSize = Int(parameters.stateSize)
        self.states = (0..<count).map { page + $0 * stateSize }
        self.page = page
        self.pageSize = pageSize
        let flags = count * Self.flagStride
        let busy = UnsafeMutableRawPointer.allocate(
            byteCount: flags * MemoryLayout<Atomic<UInt32>>.stride, alignment: 64
        ).bindMemory(to: Atomic<UInt32>.self, capacity: flags)
        for index in 0..<flags { (busy + index).initialize(to: Atomic(0)) }
        self.busy = busy
    }

    /// Only instances made for the tests end; the shared one lives as long as the process.
    deinit {
        busy.deinitialize(count: states.count * Self.flagStride)
        UnsafeMutableRawPointer(busy).deallocate()
        munmap(page, pageSize)
    }

    /// Takes state `index` if no thread is using it.
    private func tryTake(_ index: Int) -> Bool {
        busy[index * Self.flagStride].compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged
    }

    private func give(_ index: Int) {
        busy[index * Self.flagStride].store(0, ordering: .releasing)
    }

    /// Runs `body` while holding state `index` (for the tests: a busy state).
    func holdState(_ index: Int, _ body: () -> Void) {
        while !tryTake(index) { sched_yield() }
        defer { give(index) }
        body()
    }

    /// Fills `buffer` from a free state; false when every state is busy or the vDSO call failed.
    func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        // Threads start at different states (thread ids are addresses, so mix their bits first).
        let start = Int(truncatingIfNeeded: (UInt64(pthread_self()) &* 0x9e37_79b9_7f4a_7c15) >> 48)
        for offset in 0..<states.count {
            let index = (start &+ offset) % states.count
            guard tryTake(index) else { continue }
            defer { give(index) }
            return function(buffer.baseAddress, buffer.count, 0, states[index], stateSize) == buffer.count
        }
        return false
    }
}
#endif
