/// A group of processes that train one model data-parallel, as Horovod and PyTorch's
/// DistributedDataParallel do: every process holds the whole model, takes a disjoint slice of
/// each global batch, and applies the same update with gradients summed over the group.
///
/// The library holds no networking of its own: `NNBackpropMPI.MPIGroup` implements this with
/// MPI collectives. Every call is collective: each process of the group makes the same calls in
/// the same order, or the group waits forever (an implementation should end every process when
/// one fails, as MPI_Abort does). Sums must give every process the same bits.
public protocol DataParallelGroup: AnyObject {
    /// This process's index, 0..<size; rank 0 is the one that reports and writes files.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Replaces `values` on every process with rank 0's.
    func broadcast(_ values: UnsafeMutableBufferPointer<Float>) throws(NNError)
    /// Sums `values` elementwise over the group, in place on every process (blocking).
    func sum(_ values: UnsafeMutableBufferPointer<Double>) throws(NNError)
    /// Starts summing `values` elementwise over the group, in place; the sum may still be
    /// running when this returns. The buffer must stay untouched until `finishSums`.
    func startSum(_ values: UnsafeMutableBufferPointer<Float>) throws(NNError)
    /// Lets started sums progress (MPI implementations progress non-blocking collectives only
    /// inside MPI calls); called between layers of backward. Must not block.
    func progress()
    /// Waits until every started sum is done.
    func finishSums() throws(NNError)
}

extension DataParallelGroup {
    /// Rows [lo, hi) of a global batch of `count` rows that this process takes: contiguous,
    /// disjoint, in rank order, sizes differing by at most one (a process may get none).
    public func share(of count: Int) -> Range<Int> {
        (count * rank / size)..<(count * (rank + 1) / size)
    }

    /// Makes a local error collective: every process calls this at the same point with its
    /// own error or nil; when any failed, each throws, the failing ones their own error (with
    /// their rank), the others an error naming the first failing rank. Without errors, returns.
    public func agree(_ failure: NNError?, during what: String) throws(NNError) {
        var flags = [Double](repeating: 0, count: size)
        if failure != nil { flags[rank] = 1 }
        try flags.withUnsafeMutableBufferPointer { (b) throws(NNError) in try sum(b) }
        if let failure { throw failure.prefixed("rank \(rank) of \(size)") }
        if let other = flags.firstIndex(where: { $0 > 0 }) {
            throw .invalidData("data-parallel training: rank \(other) of \(size) failed \(what) (its own error says why); rank \(rank) stops too")
        }
    }

    /// Whether any process says true (a stop request, say): the same answer on every process.
    func any(_ flag: Bool) throws(NNError) -> Bool {
        var v = [flag ? 1.0 : 0.0]
        try v.withUnsafeMutableBufferPointer { (b) throws(NNError) in try sum(b) }
        return v[0] > 0
    }

    /// Whether `hash` is the same on every process: rank 0's, broadcast in four 16-bit pieces
    /// (exact as floats), against each one's own, and the mismatches summed.
    func agrees(on hash: UInt64) throws(NNError) -> Bool {
        var pieces = (0..<4).map { Float((hash >> (16 * UInt64($0))) & 0xffff) }
        try pieces.withUnsafeMutableBufferPointer { (b) throws(NNError) in try broadcast(b) }
        let root = pieces.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (16 * UInt64($1.offset)) }
        var mismatches = [root == hash ? 0.0 : 1.0]
        try mismatches.withUnsafeMutableBufferPointer { (b) throws(NNError) in try sum(b) }
        return mismatches[0] == 0
    }
}

/// A data-parallel step's gradient reduction: as backward finishes each layer, that layer's
/// gradients are scaled by this process's share of the global batch (rows / global rows, so the
/// sum over the group is the gradient of the global batch's mean loss) and, once a bucket of
/// about `bucketBytes` is ready, summed over the group while the earlier layers' backward runs.
final class GradientReducer {
    let group: any DataParallelGroup
    let gradients: UnsafeMutableBufferPointer<Float>
    let offsets: [Int]
    let bucketFloats: Int
    /// Gradients [ready, end) are final and scaled but not yet being summed.
    private var ready: Int
    private var end: Int
    private var scale: Float = 1
    private(set) var failure: NNError?

    /// The bucket size: about 1 MB; tests make it small to run many buckets.
    nonisolated(unsafe) static var bucketBytes = 1 << 20

    init(group: any DataParallelGroup, model: Sequential) {
        self.group = group
        gradients = model.gradients
        offsets = model.parameterOffsets
        // At most about 128 buckets a step, however large the model (the MPI shim keeps 256
        // sums in flight at most).
        bucketFloats = max(1, Self.bucketBytes / 4, (model.parameterCount + 127) / 128)
        ready = gradients.count
        end = gradients.count
    }

    /// Starts a step whose local rows are `rows` of `globalRows`.
    func begin(rows: Int, globalRows: Int) {
        scale = Float(Double(rows) / Double(max(globalRows, 1)))
        ready = gradients.count
        end = gradients.count
        failure = nil
    }

    /// Layer i's gradients are final.
    func layerDone(_ i: Int) {
        let lo = offsets[i], hi = offsets[i + 1]
        guard hi > lo else { return }
        let g = gradients.baseAddress!
        if scale != 1 { for k in lo..<hi { g[k] *= scale } }
        ready = lo
        if end - ready >= bucketFloats { flush() } else { group.progress() }
    }

    private func flush() {
        guard end > ready, failure == nil else { return }
        do {
            try group.startSum(UnsafeMutableBufferPointer(rebasing: gradients[ready..<end]))
        } catch {
            failure = error
        }
        end = ready
    }

    /// Sums what is left and waits for every bucket. `computed` false: this process ran no
    /// backward (no rows, or a non-finite loss), so it contributes zeros.
    func finish(computed: Bool) throws(NNError) {
        if !computed {
            // The same buckets, in the same order, as a process that ran backward: every
            // process must start the same sums.
            gradients.update(repeating: 0)
            ready = gradients.count
            end = gradients.count
            for i in stride(from: offsets.count - 2, through: 0, by: -1) { layerDone(i) }
        }
        ready = 0 // every layer has reported by now; this only guards the last bucket
        flush()
        try group.finishSums()
        if let failure { throw failure }
    }
}

extension Sequential {
    /// A hash of the parameters' bits (FNV-1a over the words): equal on every process of a
    /// data-parallel group while their weights are identical.
    var parameterHash: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in parameters { h = (h ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3 }
        return h
    }
}
