// libFuzzer harness: the .npy loader (NPYArray(bytes:) and Dataset.npy(features:targets:)).
//
// Input: one mode byte, then the payload.
//   mode & 1 == 0  NPYArray(bytes: payload), then floats() and integers()
//   mode & 1 == 1  Dataset.npy: the payload's first two bytes (little-endian, modulo the rest's
//                  length + 1) split the rest into the features file and the targets file;
//                  bits 1-2 choose the kind (.classes, .probabilities, .values, .classes with
//                  classCount 3), bit 3 a scale of 1/255
// Thrown errors are expected; crashes, traps, leaks, timeouts and huge allocations are findings.

import NNBackprop

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    guard let mode = input.first else { return 0 }
    let payload = Array(input.dropFirst())
    if mode & 1 == 0 {
        if let a = try? NPYArray(bytes: payload) {
            _ = a.floats(scale: 0.5)
            _ = try? a.integers(source: "fuzz")
        }
        return 0
    }
    guard payload.count >= 2 else { return 0 }
    let rest = Array(payload.dropFirst(2))
    let split = (Int(payload[0]) | Int(payload[1]) << 8) % (rest.count + 1)
    let x = Fuzz.write(Array(rest[..<split]), to: "x.npy")
    let y = Fuzz.write(Array(rest[split...]), to: "y.npy")
    let kinds: [(Dataset.TargetKind, Int?)] = [(.classes, nil), (.probabilities, nil), (.values, nil), (.classes, 3)]
    let (kind, classCount) = kinds[Int(mode >> 1) & 3]
    _ = try? Dataset.npy(features: x, targets: y, kind: kind, classCount: classCount, scale: mode & 8 != 0 ? 1.0 / 255.0 : 1)
    return 0
}
