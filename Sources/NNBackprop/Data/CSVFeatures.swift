extension Dataset {
    /// The numeric columns of a CSV file with no targets (inputs to `Sequential.predict`): every
    /// column but `dropping` (when given, and when the file has it), flat row-major (rows,
    /// featureCount).
    ///
    /// Parsing follows `csv(path:target:kind:classNames:delimiter:hasHeader:)`. `dropping` names
    /// a target column to skip, so the file a model was trained on can be read as inputs; a name
    /// that the header lacks is ignored (the file holds features only). Throws `fileError`,
    /// `invalidData` (empty file, a cell that is not a finite number) and `shapeMismatch`
    /// (ragged records), each naming `path:line:column`; `invalidArgument` for a bad delimiter
    /// or a column index out of range.
    public static func csvFeatures(path: String, dropping: CSVColumn? = nil, delimiter: Character = ",",
                                   hasHeader: Bool = true) throws(NNError)
        -> (features: [Float], featureCount: Int, featureNames: [String]?) {
        guard let d = delimiter.asciiValue, d != UInt8(ascii: "\""), d != UInt8(ascii: "\n"), d != UInt8(ascii: "\r") else {
            throw .invalidArgument("CSV delimiter must be one ASCII character other than a quote or line break, got '\(delimiter)'")
        }
        var reader = CSVReader(bytes: try FileIO.readAllDecompressing(path), delimiter: d, source: path)
        var fields = [CSVField]()
        guard try reader.nextRecord(&fields) else { throw .invalidData("\(path): the file is empty") }
        let columns = fields.count
        let header: [String]? = hasHeader ? fields.map { reader.text($0).trimmedSpaces } : nil

        var skip: Int?
        switch dropping {
        case nil: skip = nil
        case .last?: skip = columns - 1
        case .index(let i)?:
            guard i >= 0 && i < columns else {
                throw .invalidArgument("\(path): column index \(i) is outside 0..<\(columns) (the file has \(columns) columns)")
            }
            skip = i
        case .name(let wanted)?:
            guard let header else {
                throw .invalidArgument("\(path): column '\(wanted)' given by name, but the file is read without a header row")
            }
            skip = header.firstIndex(of: wanted)
        }
        let featureCount = columns - (skip == nil ? 0 : 1)
        guard featureCount >= 1 else { throw .invalidData("\(path): no feature column is left") }

        var features = [Float]()
        var pending = !hasHeader
        var rows = 0
        while true {
            if !pending {
                guard try reader.nextRecord(&fields) else { break }
            }
            pending = false
            guard fields.count == columns else {
                throw .shapeMismatch("\(path):\(fields.first?.line ?? reader.line): the record has \(fields.count) fields, expected \(columns)\(hasHeader ? " as in the header" : " as in the first record")")
            }
            for (j, f) in fields.enumerated() where j != skip {
                guard let v = reader.number(f), v.isFinite else {
                    let t = reader.text(f)
                    let name = header.map { "'\($0[j])'" } ?? "\(j + 1)"
                    throw .invalidData("\(path):\(f.line):\(j + 1): cell '\(t.prefix(40))' in column \(name) is not a finite number")
                }
                features.append(v)
            }
            rows += 1
        }
        guard rows > 0 else { throw .invalidData("\(path): the file has a header row but no data rows") }
        let names = header.map { h in h.enumerated().filter { $0.offset != skip }.map { $0.element } }
        return (features, featureCount, names)
    }
}
