#if canImport(FoundationEssentials)
import FoundationEssentials // not all of Foundation: keeps ICU out of libnnbackprop.so
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A column of a CSV file, by header name or by 0-based position.
public enum CSVColumn: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    /// The column whose header cell is this name.
    case name(String)
    /// The column at this 0-based position.
    case index(Int)
    /// The last column.
    case last

    public init(stringLiteral value: String) { self = .name(value) }
    public init(integerLiteral value: Int) { self = .index(value) }
}

extension Dataset {
    /// How a loader should read the target column(s) of a file.
    public enum TargetKind: Sendable, Equatable {
        /// Class labels, read as `.classes`.
        case classes
        /// Probability rows (one-hot or soft), read as `.probabilities`.
        case probabilities
        /// Real values for regression, read as `.values`.
        case values
    }

    /// A data set from a CSV file: one row per record, the `target` column as targets and every
    /// other column as a feature.
    ///
    /// - `kind`: `.classes` or `.values` (one target column; `.probabilities` is not available
    ///   from CSV). For `.classes`, labels that are all non-negative integers are the class
    ///   indices themselves (classCount = largest + 1); any other labels (words, negative or
    ///   fractional numbers) are mapped to 0..<k in sorted order (numeric order when all are
    ///   numbers), and that mapping is returned as `classNames`. Pass the `classNames` of the
    ///   training file when loading its test file, so both use the same indices.
    /// - Fields follow RFC 4180: `delimiter`-separated, optionally "quoted" (with "" for a
    ///   quote and line breaks allowed inside), records ended by LF or CRLF; blank lines are
    ///   skipped, spaces around numbers ignored, a UTF-8 byte-order mark skipped. The file may be
    ///   gzipped.
    ///
    /// Throws `fileError` when the file cannot be read, `invalidData` for an empty file, a
    /// non-numeric or non-finite cell, an unknown label or an unterminated quote, and
    /// `shapeMismatch` for a record with the wrong number of fields; each message gives
    /// `path:line:column` (1-based) and the column's name. Throws `unknownName` when `target`
    /// names no column, `invalidArgument` when its index is out of range.
    public static func csv(path: String, target: CSVColumn = .last, kind: TargetKind = .classes,
                           classNames: [String]? = nil, delimiter: Character = ",",
                           hasHeader: Bool = true) throws(NNError) -> Dataset {
        guard let d = delimiter.asciiValue, d != UInt8(ascii: "\""), d != UInt8(ascii: "\n"), d != UInt8(ascii: "\r") else {
            throw .invalidArgument("CSV delimiter must be one ASCII character other than a quote or line break, got '\(delimiter)'")
        }
        var reader = CSVReader(bytes: try FileIO.readAllDecompressing(path), delimiter: d, source: path)
        return try reader.dataset(target: target, kind: kind, classNames: classNames, hasHeader: hasHeader)
    }
}

/// A field of a record: a byte range of the file (inside the quotes when quoted), its 1-based
/// line, whether it was quoted, and whether it held "" escapes.
struct CSVField {
    var start: Int
    var end: Int
    var line: Int
    var quoted: Bool
    var escaped: Bool
}

/// A single-pass RFC 4180 reader over the bytes of a file.
struct CSVReader {
    let bytes: [UInt8]
    let delimiter: UInt8
    let source: String
    var position = 0
    var line = 1

    static let quote = UInt8(ascii: "\"")
    static let lf = UInt8(ascii: "\n")
    static let cr = UInt8(ascii: "\r")

    init(bytes: [UInt8], delimiter: UInt8, source: String) {
        self.bytes = bytes
        self.delimiter = delimiter
        self.source = source
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
    }

    /// Reads the next non-blank record into `fields`; returns false at the end of the file.
    mutating func nextRecord(_ fields: inout [CSVField]) throws(NNError) -> Bool {
        while position < bytes.count {
            fields.removeAll(keepingCapacity: true)
            try readRecord(&fields)
            let blank = fields.count == 1 && !fields[0].quoted
                && bytes[fields[0].start..<fields[0].end].allSatisfy { $0 == 0x20 || $0 == 0x09 }
            if !blank { return true }
        }
        return false
    }

    private mutating func readRecord(_ fields: inout [CSVField]) throws(NNError) {
        let n = bytes.count
        while true {
            let fieldLine = line
            if position < n && bytes[position] == CSVReader.quote {
                position += 1
                let start = position
                var escaped = false
                while true {
                    guard position < n else {
                        throw .invalidData("\(source):\(fieldLine):\(fields.count + 1): quoted field opened here is never closed")
                    }
                    let b = bytes[position]
                    if b == CSVReader.quote {
                        if position + 1 < n && bytes[position + 1] == CSVReader.quote {
                            escaped = true
                            position += 2
                            continue
                        }
                        break
                    }
                    if b == CSVReader.lf { line += 1 }
                    position += 1
                }
                fields.append(CSVField(start: start, end: position, line: fieldLine, quoted: true, escaped: escaped))
                position += 1 // the closing quote
                while position < n && (bytes[position] == 0x20 || bytes[position] == 0x09) { position += 1 }
                if position < n && bytes[position] != delimiter && bytes[position] != CSVReader.lf && bytes[position] != CSVReader.cr {
                    throw .invalidData("\(source):\(line):\(fields.count): unexpected character '\(Character(Unicode.Scalar(bytes[position])))' after a closing quote")
                }
            } else {
                let start = position
                while position < n {
                    let b = bytes[position]
                    if b == delimiter || b == CSVReader.lf || b == CSVReader.cr { break }
                    position += 1
                }
                fields.append(CSVField(start: start, end: position, line: fieldLine, quoted: false, escaped: false))
            }
            if position >= n { return }
            let b = bytes[position]
            position += 1
            if b == delimiter { continue }
            if b == CSVReader.cr && position < n && bytes[position] == CSVReader.lf { position += 1 }
            line += 1
            return
        }
    }

    /// The text of a field, with "" turned into ".
    func text(_ f: CSVField) -> String {
        let s = String(decoding: bytes[f.start..<f.end], as: UTF8.self)
        return f.escaped ? s.collapsingDoubledQuotes : s
    }

    /// The field as a float, or nil when it is not a number (spaces around it are allowed).
    func number(_ f: CSVField) -> Float? {
        var s = f.start, e = f.end
        while s < e && (bytes[s] == 0x20 || bytes[s] == 0x09) { s += 1 }
        while e > s && (bytes[e - 1] == 0x20 || bytes[e - 1] == 0x09) { e -= 1 }
        let len = e - s
        guard len > 0, len < 128, !f.escaped else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: len + 1) { buf -> Float? in
            guard let base = buf.baseAddress else { return nil }
            for i in 0..<len { base[i] = CChar(bitPattern: bytes[s + i]) }
            base[len] = 0
            var endPointer: UnsafeMutablePointer<CChar>?
            let v = strtof(base, &endPointer)
            guard let endPointer, endPointer == base + len else { return nil }
            return v
        }
    }

    mutating func dataset(target: CSVColumn, kind: Dataset.TargetKind, classNames: [String]?,
                          hasHeader: Bool) throws(NNError) -> Dataset {
        if kind == .probabilities {
            throw .invalidArgument("CSV targets are one column: read them as .classes or .values, not .probabilities")
        }
        var fields = [CSVField]()
        guard try nextRecord(&fields) else { throw .invalidData("\(source): the file is empty") }
        let columns = fields.count
        let header: [String]? = hasHeader ? fields.map { text($0).trimmedSpaces } : nil
        func name(_ j: Int) -> String { header.map { "'\($0[j])'" } ?? "\(j + 1)" }

        let targetIndex: Int
        switch target {
        case .last:
            targetIndex = columns - 1
        case .index(let i):
            guard i >= 0 && i < columns else {
                throw .invalidArgument("\(source): target column index \(i) is outside 0..<\(columns) (the file has \(columns) columns)")
            }
            targetIndex = i
        case .name(let wanted):
            guard let header else {
                throw .invalidArgument("\(source): target column '\(wanted)' given by name, but the file is read without a header row")
            }
            guard let i = header.firstIndex(of: wanted) ?? header.firstIndex(of: wanted.trimmedSpaces) else {
                throw .unknownName("\(source): no column named '\(wanted)'; the header has: \(header.joined(separator: ", "))")
            }
            targetIndex = i
        }
        guard columns >= 2 else {
            throw .invalidData("\(source): the file has \(columns) column; it needs at least one feature column besides the target")
        }

        var features = [Float]()
        var labelText = [String]()
        var labelLines = [Int]()
        var values = [Float]()
        var rows = 0
        var pending = !hasHeader // without a header, the first record is data
        while true {
            if !pending {
                guard try nextRecord(&fields) else { break }
            }
            pending = false
            guard fields.count == columns else {
                throw .shapeMismatch("\(source):\(fields.first?.line ?? line): the record has \(fields.count) fields, expected \(columns)\(hasHeader ? " as in the header" : " as in the first record")")
            }
            for (j, f) in fields.enumerated() {
                if j == targetIndex {
                    if kind == .classes {
                        labelText.append(text(f).trimmedSpaces)
                        labelLines.append(f.line)
                    } else {
                        values.append(try cellNumber(f, column: j, name: name(j)))
                    }
                } else {
                    features.append(try cellNumber(f, column: j, name: name(j)))
                }
            }
            rows += 1
        }
        guard rows > 0 else { throw .invalidData("\(source): the file has a header row but no data rows") }

        let featureNames = header.map { h in h.enumerated().filter { $0.offset != targetIndex }.map { $0.element } }
        let targets: Dataset.Targets
        var names: [String]? = nil
        if kind == .values {
            targets = .values(values, width: 1)
        } else {
            let (labels, classCount, mapping) = try classIndices(labelText, lines: labelLines, column: targetIndex,
                                                                 name: name(targetIndex), classNames: classNames)
            targets = .classes(labels, classCount: classCount)
            names = mapping
        }
        do {
            return try Dataset(features: features, featureCount: columns - 1, targets: targets,
                               featureNames: featureNames, classNames: names)
        } catch {
            throw error.prefixed(source)
        }
    }

    private func cellNumber(_ f: CSVField, column j: Int, name: String) throws(NNError) -> Float {
        guard let v = number(f) else {
            let t = text(f)
            let shown = t.count > 40 ? String(t.prefix(40)) + "..." : t
            throw .invalidData("\(source):\(f.line):\(j + 1): cell '\(shown)' in column \(name) is \(t.trimmedSpaces.isEmpty ? "empty" : "not a number")")
        }
        guard v.isFinite else {
            throw .invalidData("\(source):\(f.line):\(j + 1): cell '\(text(f))' in column \(name) is \(v); values must be finite")
        }
        return v
    }

    private func classIndices(_ labels: [String], lines: [Int], column: Int, name: String,
                              classNames: [String]?) throws(NNError) -> ([Int32], Int, [String]?) {
        if let classNames {
            var index = [String: Int32]()
            for (i, c) in classNames.enumerated() where index[c] == nil { index[c] = Int32(i) }
            var out = [Int32]()
            out.reserveCapacity(labels.count)
            for (r, l) in labels.enumerated() {
                guard let i = index[l] else {
                    throw .invalidData("\(source):\(lines[r]):\(column + 1): label '\(l)' in column \(name) is not one of the given classes \(classNames)")
                }
                out.append(i)
            }
            return (out, classNames.count, classNames)
        }
        // All non-negative integers: the labels are the indices.
        let integers = labels.map { l -> Int32? in
            guard let v = Int32(l), v >= 0, v < Int32.max else { return nil }
            return v
        }
        if integers.allSatisfy({ $0 != nil }) {
            let out = integers.map { $0 ?? 0 }
            if let r = out.indices.max(by: { out[$0] < out[$1] }), Int(out[r]) >= Dataset.maxClassCount {
                throw .invalidData("\(source):\(lines[r]):\(column + 1): label \(out[r]) in column \(name) would make \(Int(out[r]) + 1) classes (whole-number labels are class indices counted from 0), more than the \(Dataset.maxClassCount) a data set may have")
            }
            return (out, Int(out.max() ?? 0) + 1, nil)
        }
        // Otherwise map the distinct labels, sorted, to 0..<k.
        var distinct = Array(Set(labels))
        let numeric = distinct.map { Double($0) }
        if numeric.allSatisfy({ $0 != nil }) {
            distinct = zip(distinct, numeric).sorted { ($0.1 ?? 0, $0.0) < ($1.1 ?? 0, $1.0) }.map { $0.0 }
        } else {
            distinct.sort()
        }
        if let r = labels.firstIndex(where: { $0.isEmpty }) {
            throw .invalidData("\(source):\(lines[r]):\(column + 1): label in column \(name) is empty")
        }
        var index = [String: Int32]()
        for (i, c) in distinct.enumerated() { index[c] = Int32(i) }
        return (labels.map { index[$0] ?? 0 }, distinct.count, distinct)
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs (CSV cells and headers).
    var trimmedSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }

    /// A quoted CSV field's text with each doubled quote ("") read as one.
    var collapsingDoubledQuotes: String {
        var out = ""
        out.reserveCapacity(count)
        var previousQuote = false
        for c in self {
            if c == "\"" && previousQuote {
                previousQuote = false
                continue
            }
            previousQuote = c == "\""
            out.append(c)
        }
        return out
    }
}
