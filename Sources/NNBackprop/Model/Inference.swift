import CKernels

extension Sequential {
    /// The outputs (rows, outputSize) for `rows` samples of `input` (rows, inputSize), written
    /// to `output`, after the scaler; reentrant.
    ///
    /// Unlike `predict`, which runs through the layers' own reusable buffers, this reads the
    /// parameters and buffers only and keeps every intermediate in scratch that belongs to the
    /// call, so any number of threads may run it at once on one model (the C API's
    /// `nnb_predict` and `nnb_evaluate` are this). It must not overlap training or loading of
    /// the same model. Inputs are not validated here: callers check finiteness and sizes first.
    /// Every layer runs in inference mode (dropout is the identity).
    public func infer(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        guard let scaler else { return infer(input, rows: rows, into: output, scratch: nil) }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * inputSize) { scaled in
            scaled.baseAddress!.update(from: input, count: rows * inputSize)
            scaler.transformRows(scaled)
            infer(scaled.baseAddress!, rows: rows, into: output, scratch: nil)
        }
    }

    /// The layers' inference scratch: two ping-pong planes of the widest sample, then the
    /// largest scratch any layer asks for.
    public func inferenceScratchCount(rows: Int) -> Int {
        let work = layers.reduce(0) { max($0, $1.inferenceScratchCount(rows: rows)) }
        return 2 * rows * widestSample + work
    }

    /// The model as a layer: the inference pass without the scaler. `scratch` may be nil; the
    /// call then takes its own.
    public func infer(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>,
                      scratch: UnsafeMutableBufferPointer<Float>?) {
        guard rows > 0 else { return }
        // One sample runs on the calling thread: a fork and join of the kernels' threads costs
        // more than it saves at one sample's sizes. Measured with `nnb bench --cnn` (2-core Zen
        // 4): the README CNN's one-image latency 138-320 us forked, 97-99 us on one thread;
        // LeNet-5's, which forked nothing, 55-59 us either way. The exceptions are bound by
        // memory, not compute: products streaming large weights (split by their bytes in the
        // GEMM's dot path) and a model of Dense layers only (`inferDenseChain`).
        let cap = rows == 1 ? nnk_set_thread_cap(1) : -1
        defer { if cap >= 0 { nnk_set_thread_cap(cap) } }
        let need = inferenceScratchCount(rows: rows)
        guard let scratch else {
            return withUnsafeTemporaryAllocation(of: Float.self, capacity: need + 1) {
                infer(input, rows: rows, into: output, scratch: $0)
            }
        }
        let plane = rows * widestSample
        // The layers' share is what the buffer holds past the planes: a layer's own count can
        // change with the thread count meanwhile (nnb_set_num_threads), the buffer's cannot.
        let base = scratch.baseAddress!
        var ping = base, pong = base + plane
        if rows == 1, inferDenseChain(input, into: output, ping: ping, pong: pong) { return }
        let work = UnsafeMutableBufferPointer(start: base + 2 * plane, count: scratch.count - 2 * plane)
        var current = input
        for (i, layer) in layers.enumerated() {
            let target = i == layers.count - 1 ? output : ping
            layer.infer(current, rows: rows, into: target, scratch: work.count > 0 ? work : nil)
            current = UnsafePointer(target)
            swap(&ping, &pong)
        }
    }

    /// One sample through a model of fp32 Dense layers only, as one chain in one parallel
    /// region (`nnk_dense_chain_forward_row`): each core streams the same share of every
    /// layer's weights, from its own cache on later calls. Bitwise the layer-by-layer pass.
    /// false, having written nothing, for any other model (or with an sgemm override).
    private func inferDenseChain(_ input: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
                                 ping: UnsafeMutablePointer<Float>, pong: UnsafeMutablePointer<Float>) -> Bool {
        withUnsafeTemporaryAllocation(of: nnk_dense_link.self, capacity: layers.count) { links in
            for (i, layer) in layers.enumerated() {
                guard let dense = layer as? Dense, let link = dense.chainLink else { return false }
                links[i] = link
            }
            return nnk_dense_chain_forward_row(output, input, links.baseAddress, layers.count, ping, pong) == 0
        }
    }
}
