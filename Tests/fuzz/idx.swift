// libFuzzer harness: the IDX loader (IDXArray(bytes:), IDXArray(contentsOf:) with its gunzip,
// and Dataset.idx(images:labels:)).
//
// Input: one mode byte, then the payload.
//   mode & 3 == 0  IDXArray(bytes: payload), then floats() and integers()
//   mode & 3 == 1  payload written as a file, IDXArray(contentsOf:) (gunzipped when it starts
//                  1f 8b: raw gzip bytes from the fuzzer)
//   mode & 3 == 2  payload gzipped by the harness, written, IDXArray(contentsOf:)
//   mode & 3 == 3  Dataset.idx(images:labels:): the payload's first two bytes (little-endian,
//                  modulo the rest's length + 1) split the rest into the images file and the
//                  labels file; bit 2 gzips the images, bit 3 the labels; bit 4 passes
//                  classCount 10 (as mnistFamily does) instead of inferring it
// Thrown errors are expected; crashes, traps, leaks, timeouts and huge allocations are findings.

import NNBackprop

private func exercise(_ a: IDXArray) {
    _ = a.floats(scale: 1.0 / 255.0)
    _ = try? a.integers()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    guard let mode = input.first else { return 0 }
    let payload = Array(input.dropFirst())
    switch mode & 3 {
    case 0:
        if let a = try? IDXArray(bytes: payload) { exercise(a) }
    case 1, 2:
        let path = Fuzz.write(mode & 3 == 2 ? Fuzz.gzip(payload) : payload, to: "input.idx")
        if let a = try? IDXArray(contentsOf: path) { exercise(a) }
    default:
        guard payload.count >= 2 else { return 0 }
        let rest = Array(payload.dropFirst(2))
        let split = (Int(payload[0]) | Int(payload[1]) << 8) % (rest.count + 1)
        let images = Array(rest[..<split]), labels = Array(rest[split...])
        let imagesPath = Fuzz.write(mode & 4 != 0 ? Fuzz.gzip(images) : images, to: "images.idx")
        let labelsPath = Fuzz.write(mode & 8 != 0 ? Fuzz.gzip(labels) : labels, to: "labels.idx")
        _ = try? Dataset.idx(images: imagesPath, labels: labelsPath, classCount: mode & 16 != 0 ? 10 : nil)
    }
    return 0
}
