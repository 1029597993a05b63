import ArgumentParser
import Foundation
import NNBackprop

/// What a network learns: class labels or real values.
enum Task: String, ExpressibleByArgument, CaseIterable, Sendable {
    case classify, regress

    var targetKind: Dataset.TargetKind { self == .classify ? .classes : .values }
}

/// `--data` and the options that say how to read it; shared by train, evaluate and predict.
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The data: a CSV file; a FANN training file (.data); an IDX images file or .npy features file (with --targets); a directory of MNIST-style IDX files; 'fashion-mnist' (Debian's dataset-fashion-mnist); or 'spirals' (generated, the default of train).",
        valueName: "file"))
    var data: String?

    @Option(help: ArgumentHelp("The labels (IDX) or targets (.npy) file that goes with --data.", valueName: "file"))
    var targets: String?

    @Option(help: ArgumentHelp("The CSV column of the targets: a header name or a 0-based index. Default: the last column.",
                               valueName: "column"))
    var target: String?

    @Option(help: "classify (class labels) or regress (real values). Default: classify, or what the model was trained for.")
    var task: Task?

    @Option(help: "The CSV field delimiter, one character.")
    var delimiter: String = ","

    @Flag(help: "The CSV file has no header row.")
    var noHeader = false

    func validate() throws {
        guard delimiter.count == 1, let c = delimiter.first, c.isASCII, c != "\"", c != "\n", c != "\r" else {
            throw ValidationError("--delimiter must be one ASCII character other than a quote or a line break, got '\(delimiter)'")
        }
        if targets != nil {
            guard let data else { throw ValidationError("--targets needs --data (the features file of the pair)") }
            let source = DataSource(data, targets: targets)
            guard source.takesTargetsFile else {
                throw ValidationError("--targets goes with an IDX or .npy features file, not with '\(data)'")
            }
        }
    }

    /// The CSV target column: a name, an index when the text is a whole number, or the last.
    var targetColumn: CSVColumn {
        guard let target else { return .last }
        if let i = Int(target) { return .index(i) }
        return .name(target)
    }
}

/// Where rows come from, decided from the text of `--data`.
enum DataSource: Equatable {
    /// `Dataset.spirals` with fixed arguments, split 80/20 with a fixed seed.
    case spirals
    /// Debian's Fashion-MNIST, train and test parts.
    case fashionMNIST
    /// A directory of MNIST-style IDX files (train-images-idx3-ubyte[.gz], ...).
    case mnistDirectory(String)
    case csv(String)
    case idx(images: String, labels: String?)
    case npy(features: String, targets: String?)
    /// A FANN training file (.data whose first line is "rows inputs outputs").
    case fann(String)

    init(_ path: String?, targets: String?) {
        guard let path else { self = .spirals; return }
        let lower = path.lowercased()
        var isDirectory: ObjCBool = false
        if lower == "spirals" {
            self = .spirals
        } else if lower == "fashion-mnist" || lower == "fashion_mnist" {
            self = .fashionMNIST
        } else if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            self = .mnistDirectory(path)
        } else if lower.hasSuffix(".data"), let head = try? FileIO.readAll(path).prefix(256),
                  Dataset.looksLikeFANN(Substring(String(decoding: head, as: UTF8.self))) {
            self = .fann(path)
        } else if lower.hasSuffix(".npy") {
            self = .npy(features: path, targets: targets)
        } else if lower.contains("idx") || lower.contains("-ubyte") {
            self = .idx(images: path, labels: targets)
        } else {
            self = .csv(path)
        }
    }

    var takesTargetsFile: Bool {
        switch self {
        case .idx, .npy: return true
        default: return false
        }
    }

    /// Whether the source has its own test part (so train needs no hold-out).
    var hasTestPart: Bool {
        switch self {
        case .spirals, .fashionMNIST, .mnistDirectory: return true
        default: return false
        }
    }

    /// What the data is called in messages and summaries.
    var name: String {
        switch self {
        case .spirals: return "spirals (generated)"
        case .fashionMNIST: return "Fashion-MNIST"
        case .mnistDirectory(let d): return d
        case .csv(let p), .fann(let p): return p
        case .idx(let p, _), .npy(let p, _): return p
        }
    }

    /// The two-spirals data of `nnb train` with no --data: 2000 points, 1.5 turns, split 80/20.
    static func builtInSpirals() throws(NNError) -> (train: Dataset, test: Dataset) {
        try Dataset.spirals(count: 2000, classes: 2, turns: 1.5, noise: 0.03, seed: 0).split(testFraction: 0.2, seed: 0)
    }

    /// The rows of this source; `part` picks the train or test part of sources that have both.
    /// `classNames` maps CSV labels to the indices a model was trained with.
    func load(_ options: DataOptions, task: Task, part: Dataset.Split, classNames: [String]? = nil) throws(NNError) -> Dataset {
        switch self {
        case .spirals:
            let s = try DataSource.builtInSpirals()
            return part == .train ? s.train : s.test
        case .fashionMNIST:
            return try Dataset.fashionMNIST(split: part)
        case .mnistDirectory(let dir):
            return try Dataset.mnistFamily(split: part, directory: dir)
        case .csv(let path):
            return try Dataset.csv(path: path, target: options.targetColumn, kind: task.targetKind,
                                   classNames: classNames, delimiter: options.delimiter.first ?? ",",
                                   hasHeader: !options.noHeader)
        case .idx(let images, let labels):
            guard let labels else { throw .invalidArgument("\(images) is an IDX images file: give its labels file with --targets") }
            return try Dataset.idx(images: images, labels: labels, classCount: classNames?.count, classNames: classNames)
        case .fann(let path):
            return try Dataset.fann(path: path, kind: task.targetKind)
        case .npy(let features, let targets):
            guard let targets else { throw .invalidArgument("\(features) is a .npy features file: give its targets file with --targets") }
            return try Dataset.npy(features: features, targets: targets, kind: task.targetKind, classCount: classNames?.count)
        }
    }
}
