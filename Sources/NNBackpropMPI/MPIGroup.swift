import CMPI
import NNBackprop

/// Data-parallel training over MPI (`DataParallelGroup`): the processes of an MPI job, e.g.
/// `mpirun -np 4 nnb train --distributed ...`. Gradient sums are `MPI_Iallreduce` calls on
/// buckets of the flat gradient buffer, started while backward still runs on earlier layers;
/// broadcasts and metric sums are blocking collectives on a duplicate of the communicator
/// (errors returned, not fatal).
///
/// Determinism: Open MPI picks its allreduce algorithm from the number of processes and the
/// message size only, so the same job (processes, model, batch size) sums in the same order on
/// every run and every process receives the same bits; fit checks the weights' hash across the
/// processes after each epoch.
///
/// Every call is collective: when one process fails it must end the job, or the others wait
/// for it forever; `abort(_:)` does that (MPI_Abort), and `run(_:)` does it on any error.
public final class MPIGroup: DataParallelGroup {
    public let rank: Int
    public let size: Int

    /// Whether this build has MPI (Package.swift found it).
    public static var isAvailable: Bool { cmpi_built() != 0 }

    /// The MPI library's version line, or nil without MPI.
    public static var libraryVersion: String? {
        guard isAvailable else { return nil }
        var buf = [CChar](repeating: 0, count: 512)
        cmpi_library_version(&buf, buf.count)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Joins the job on MPI_COMM_WORLD, initializing MPI if the program has not; `communicator`
    /// may point at another MPI_Comm. Throws `unsupported` in a build without MPI.
    public init(communicator: UnsafeRawPointer? = nil) throws(NNError) {
        var r: Int32 = 0, s: Int32 = 0
        try Self.check("MPI initialization") { cmpi_init(communicator, &r, &s, $0, $1) }
        rank = Int(r)
        size = Int(s)
    }

    public func broadcast(_ values: UnsafeMutableBufferPointer<Float>) throws(NNError) {
        guard let p = values.baseAddress else { return }
        try Self.check("broadcast") { cmpi_broadcast_floats(p, values.count, $0, $1) }
    }

    /// Seconds this process has spent waiting in blocking sums and in `finishSums`: the
    /// communication that computation did not hide (benchmarks read it).
    public private(set) var waitSeconds: Double = 0

    private func timed<T>(_ body: () throws(NNError) -> T) throws(NNError) -> T {
        let start = ContinuousClock.now
        defer {
            let d = ContinuousClock.now - start
            waitSeconds += Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        return try body()
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Double>) throws(NNError) {
        guard let p = values.baseAddress else { return }
        try timed { () throws(NNError) in try Self.check("sum") { cmpi_sum_doubles(p, values.count, $0, $1) } }
    }

    public func startSum(_ values: UnsafeMutableBufferPointer<Float>) throws(NNError) {
        guard let p = values.baseAddress else { return }
        try Self.check("gradient sum") { cmpi_start_sum_floats(p, values.count, $0, $1) }
    }

    public func progress() { cmpi_progress() }

    public func finishSums() throws(NNError) {
        try timed { () throws(NNError) in try Self.check("gradient sum") { cmpi_finish_sums($0, $1) } }
    }

    /// Ends every process of the job with exit status `code`, after printing `message` with this
    /// process's rank to standard error. Does not return.
    public func abort(_ message: String, code: Int32 = 1) -> Never {
        FileHandleShim.writeError("rank \(rank) of \(size): \(message)\n")
        cmpi_abort(code)
        fatalError("MPI_Abort returned") // MPI_Abort does not return
    }

    /// Runs `body`; any error it throws ends the whole job (`abort`) with the error's message,
    /// so no process waits for one that has stopped.
    public func run<T>(_ body: () throws -> T) -> T {
        do { return try body() } catch { abort("\(error)") }
    }

    /// MPI_Finalize, if this group initialized MPI. Call once, after the last collective.
    public func finalize() { cmpi_finalize() }

    private static func check(_ what: String, _ call: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws(NNError) {
        var err = [CChar](repeating: 0, count: 512)
        let rc = err.withUnsafeMutableBufferPointer { call($0.baseAddress!, $0.count) }
        guard rc == 0 else {
            let msg = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if cmpi_built() == 0 { throw .unsupported("distributed training: \(msg)") }
            throw .pluginError("MPI \(what): \(msg)")
        }
    }
}
