// libFuzzer harness: the CSV loader, Dataset.csv(path:...) and Dataset.csvFeatures(path:...).
//
// Input: two option bytes, then the file.
//   byte 0  bit 0     the harness gzips the file (the loader gunzips what starts 1f 8b; raw
//                     gzip bytes from the fuzzer reach that path too with the bit clear)
//           bits 1-2  target / dropped column: last, index 0, index 1, name "y"
//           bit 3     targets as .values instead of .classes
//           bit 4     no header row
//           bits 5-6  delimiter: ',' ';' tab '|'
//           bit 7     csvFeatures (the predict path) instead of csv
//   byte 1  bit 0     pass classNames ["0", "1", "a", "b"] (as a test file loaded with the
//                     training file's classes is)
// Thrown errors are expected; crashes, traps, leaks, timeouts and huge allocations are findings.

import NNBackprop

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    guard input.count >= 2 else { return 0 }
    let flags = input[0], more = input[1]
    var file = Array(input[2...])
    if flags & 1 != 0 { file = Fuzz.gzip(file) }
    let path = Fuzz.write(file, to: "input.csv")

    let column: CSVColumn = [CSVColumn.last, .index(0), .index(1), .name("y")][Int(flags >> 1) & 3]
    let delimiter: Character = [",", ";", "\t", "|"][Int(flags >> 5) & 3]
    let hasHeader = flags & 0x10 == 0
    if flags & 0x80 != 0 {
        _ = try? Dataset.csvFeatures(path: path, dropping: column, delimiter: delimiter, hasHeader: hasHeader)
    } else {
        let kind: Dataset.TargetKind = flags & 8 != 0 ? .values : .classes
        let names: [String]? = more & 1 != 0 ? ["0", "1", "a", "b"] : nil
        _ = try? Dataset.csv(path: path, target: column, kind: kind, classNames: names, delimiter: delimiter, hasHeader: hasHeader)
    }
    return 0
}
