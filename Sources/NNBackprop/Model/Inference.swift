import CKernels

extension Sequential {
    /// The outputs (rows, outputSize) for `rows` rows of `input` (rows, inputSize), written to
    /// `output`; reentrant.
    ///
    /// Unlike `predict`, which runs through the layers' own reusable buffers, this reads the
    /// weights only and keeps every intermediate in scratch that belongs to the call, so any
    /// number of threads may run it at once on one model (the C API's `nnb_predict` is this).
    /// It must not overlap training or loading of the same model. Inputs are not validated here:
    /// callers check finiteness and sizes first. Dropout is the identity, as at inference.
    public func infer(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        let widest = layers.reduce(max(inputSize, outputSize)) { max($0, $1.outputSize(forInputSize: $0)) }
        let plane = rows * widest
        // Two ping-pong activations, a pre-activation slot is unneeded at inference, plus GEMM
        // scratch for batches past the unpacked small-row path.
        let threads = nnk_get_num_threads()
        var work = 0
        var width = inputSize
        for layer in layers {
            let out = layer.outputSize(forInputSize: width)
            if layer is Dense { work = max(work, nnk_sgemm_work_size(rows, out, width, threads)) }
            width = out
        }
        if rows <= 4 { work = 0 } // X * W^T with up to 4 rows never packs
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * plane + work + 1) { scratch in
            let base = scratch.baseAddress!
            var current = UnsafeMutablePointer(mutating: input)
            var ping = base, pong = base + plane
            let workPointer = work > 0 ? base + 2 * plane : nil
            if let scaler {
                ping.update(from: input, count: rows * inputSize)
                scaler.transformRows(UnsafeMutableBufferPointer(start: ping, count: rows * inputSize))
                current = ping
                swap(&ping, &pong)
            }
            var width = inputSize
            for layer in layers {
                let out = layer.outputSize(forInputSize: width)
                let n = rows * out
                if let dense = layer as? Dense {
                    nnk_dense_forward(ping, nil, out, current, width, dense.weight.baseAddress!, width,
                                      dense.bias.baseAddress!, rows, out, width, dense.activation.kernel,
                                      dense.activation.alpha, workPointer, work)
                } else if let act = layer as? ActivationLayer {
                    nnk_act_forward(act.activation.kernel, act.activation.alpha, ping, current, n)
                } else if let custom = layer as? CustomActivationLayer {
                    custom.apply(ping, current, count: n)
                } else if layer is Softmax {
                    nnk_softmax_forward(ping, out, current, width, rows, out)
                } else if layer is LogSoftmax {
                    nnk_log_softmax_forward(ping, out, current, width, rows, out)
                } else {
                    // Dropout and any width-preserving identity at inference.
                    precondition(layer is Dropout, "infer: no inference rule for layer \(layer.spec.type)")
                    ping.update(from: current, count: n)
                }
                current = ping
                swap(&ping, &pong)
                width = out
            }
            output.update(from: current, count: rows * outputSize)
        }
    }
}
