// Post-training int8 quantization through the C API.

import CNNBackprop
import NNBackprop

@c(nnb_model_quantize_int8)
public func nnbModelQuantizeInt8(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ rows: Int, _ cols: Int,
                                 _ calibrationRows: Int) -> nnb_status {
    capiCall("nnb_model_quantize_int8") {
        let h = try handle(model)
        let n = try size(calibrationRows, "calibration_rows")
        let xs = try features(x, rows: rows, cols: cols, model: h.model)
        let data = try Dataset(features: Array(xs), featureCount: cols, targets: .values([Float](repeating: 0, count: rows), width: 1))
        try h.mutate("nnb_model_quantize_int8") { try h.model.quantizeInt8(calibration: data, rows: n == 0 ? 1000 : n) }
    }
}

@c(nnb_model_remove_quantization)
public func nnbModelRemoveQuantization(_ model: OpaquePointer?) -> nnb_status {
    capiCall("nnb_model_remove_quantization") {
        let h = try handle(model)
        try h.mutate("nnb_model_remove_quantization") { h.model.removeQuantization() }
    }
}

@c(nnb_model_is_quantized)
public func nnbModelIsQuantized(_ model: OpaquePointer?) -> Int32 {
    guard let model, let h = try? handle(model) else { return 0 }
    return h.read { h.model.isQuantized } ? 1 : 0
}
