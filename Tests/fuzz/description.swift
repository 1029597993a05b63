// libFuzzer harness: the layer-description grammar ("784-256:relu-10") through its public entry,
// the C API's nnb_model_create_from_string, then nnb_model_free.
//
// Input: the description (bytes up to the first NUL). A description that builds a model is
// also described (nnb_model_describe), rebuilt from that text and described again: the two
// descriptions and the two models' shapes must agree, or the harness aborts as a finding.
//
// Descriptions whose dense layers add up to more than NNB_FUZZ_MAX_PARAMS parameters (default
// 2^20) are skipped before the call: the library accepts models up to 2^31 parameters (8 GiB,
// `Shape.maxElements`, checked in Sequential before anything is allocated) by design, and a
// request for one is the caller's choice, not a parsing bug. NNB_FUZZ_MAX_PARAMS=0 lifts the
// cap. The count follows the grammar's shapes only roughly; the library's own check stays the
// one that counts.

import CNNBackprop
#if canImport(Glibc)
import Glibc
#endif

/// Whether the dense layers of `text`, counted as the grammar builds them, stay within `cap`
/// parameters (0: no cap). A walk over the shapes: the input shape ("784", "7x44775"), dense
/// layers ("N", "N:act", "dense(...)", "linear(...)") on the last dimension, flatten (the
/// product) and reshape (its dimensions, one -1 inferred); every other element keeps the shape.
/// Text it cannot follow is let through: the library refuses it.
private func withinParameterCap(_ text: String, cap: Int) -> Bool {
    guard cap > 0 else { return true }
    let parts = splitOutsideParentheses(String(text.filter { !$0.isWhitespace }), "-")
    guard let first = parts.first else { return true }
    var shape = first.split(separator: "x", omittingEmptySubsequences: false).compactMap { Int($0) }
    guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else { return true } // not a shape: the library refuses it
    var total = 0
    func elements(_ dims: [Int]) -> Int? {
        var n = 1
        for d in dims {
            let (p, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = p
        }
        return n
    }
    for part in parts.dropFirst() {
        let head = splitOutsideParentheses(part, ":").first ?? ""
        let lower = head.lowercased()
        var units: Int?
        if let n = Int(head) {
            units = n
        } else if lower.hasPrefix("dense(") || lower.hasPrefix("linear(") {
            let inner = lower.drop { $0 != "(" }.dropFirst().prefix { $0 != ")" }
            for arg in inner.split(separator: ",") {
                let kv = arg.split(separator: "=", maxSplits: 1).map(String.init)
                if kv.count == 1, units == nil, let n = Int(kv[0]) { units = n }
                if kv.count == 2, kv[0] == "units" || kv[0] == "out_features", let n = Int(kv[1]) { units = n }
            }
        } else if lower == "flatten" {
            guard let n = elements(shape) else { return false }
            shape = [n]
        } else if lower.hasPrefix("reshape(") {
            let inner = lower.drop { $0 != "(" }.dropFirst().prefix { $0 != ")" }
            let value = inner.split(separator: "=", maxSplits: 1).last.map(String.init) ?? ""
            let dims = value.split(separator: "x").compactMap { Int($0) }
            guard let n = elements(shape), !dims.isEmpty else { continue }
            let known = dims.filter { $0 > 0 }.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
            shape = dims.map { $0 == -1 && known > 0 ? n / known : $0 }
        }
        guard let units, units > 0, let width = shape.last, width > 0 else { continue }
        let (w, o1) = width.multipliedReportingOverflow(by: units)
        let (layer, o2) = w.addingReportingOverflow(units)
        let (sum, o3) = total.addingReportingOverflow(layer)
        if o1 || o2 || o3 || sum > cap { return false }
        total = sum
        shape[shape.count - 1] = units
    }
    return true
}

/// `text` split at `separator` outside parentheses, as the grammar splits it.
private func splitOutsideParentheses(_ text: String, _ separator: Character) -> [String] {
    var parts: [String] = [], current = "", depth = 0
    for c in text {
        if c == "(" { depth += 1 } else if c == ")" { depth -= 1 }
        if c == separator && depth == 0 { parts.append(current); current = "" } else { current.append(c) }
    }
    parts.append(current)
    return parts
}

private func describe(_ model: OpaquePointer) -> String {
    var needed = 0
    guard nnb_model_describe(model, nil, 0, &needed) == NNB_OK, needed > 0 else {
        Fuzz.fail("nnb_model_describe could not size the description of a model it made")
    }
    var buffer = [UInt8](repeating: 0, count: needed)
    let status = buffer.withUnsafeMutableBufferPointer { buf in
        buf.withMemoryRebound(to: CChar.self) { nnb_model_describe(model, $0.baseAddress, needed, nil) }
    }
    guard status == NNB_OK, buffer.last == 0 else {
        Fuzz.fail("nnb_model_describe failed with the capacity it asked for, or left no NUL at its end")
    }
    return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
}

private func info(_ model: OpaquePointer) -> nnb_model_info {
    var i = nnb_model_info()
    i.struct_size = UInt32(MemoryLayout<nnb_model_info>.size)
    guard nnb_model_get_info(model, &i) == NNB_OK else { Fuzz.fail("nnb_model_get_info failed on a model it made") }
    return i
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDescription(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    let text = Array(input.prefix { $0 != 0 }) + [0]
    guard withinParameterCap(String(decoding: text.dropLast(), as: UTF8.self),
                             cap: Fuzz.limit("NNB_FUZZ_MAX_PARAMS", default: 1 << 20)) else { return 0 }
    var model: OpaquePointer?
    let status = text.withUnsafeBufferPointer { buf in
        buf.withMemoryRebound(to: CChar.self) { nnb_model_create_from_string(&model, $0.baseAddress, 7) }
    }
    guard status == NNB_OK else {
        if model != nil { Fuzz.fail("nnb_model_create_from_string failed (\(status)) but set *out") }
        return 0
    }
    guard let model else { Fuzz.fail("nnb_model_create_from_string returned NNB_OK and a NULL model") }
    defer { nnb_model_free(model) }

    let description = describe(model)
    var again: OpaquePointer?
    let status2 = nnb_model_create_from_string(&again, description, 7)
    guard status2 == NNB_OK, let again else {
        let why = nnb_last_error().map { String(cString: $0) } ?? "no message"
        Fuzz.fail("the description '\(description)' of a model made from a description does not parse: \(why)")
    }
    defer { nnb_model_free(again) }
    let description2 = describe(again)
    guard description == description2 else {
        Fuzz.fail("describe -> create -> describe changed the description: '\(description)' -> '\(description2)'")
    }
    let a = info(model), b = info(again)
    guard a.inputs == b.inputs, a.outputs == b.outputs, a.layers == b.layers, a.parameters == b.parameters else {
        Fuzz.fail("the model rebuilt from '\(description)' has another shape")
    }
    return 0
}
