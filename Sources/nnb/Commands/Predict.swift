import ArgumentParser
import Foundation
import NNBackprop

/// `nnb predict`: a saved model's predictions for each row, as CSV.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a saved model's predictions for each row of the data, as CSV.",
        discussion: """
            A CSV file may hold the features alone or the features and the target column (the \
            one the model was trained with, or --target), which is skipped. A classifier writes \
            the predicted class and the probability of each class; a regressor writes its outputs.
            """
    )

    @Option(help: ArgumentHelp("The model file written by nnb train --output.", valueName: "file"))
    var model: String

    @OptionGroup(title: "Data") var data: DataOptions

    @Option(name: .customLong("plugin"), help: ArgumentHelp("Load a plugin library first (repeatable): a model that uses a plugin's activation needs it.", valueName: "file.so"))
    var plugins: [String] = []

    @Option(help: ArgumentHelp("Write the predictions to this CSV file (default: standard output).", valueName: "file"))
    var output: String?

    @Option(parsing: .unconditional, help: "Threads for the kernels. Default: OMP_NUM_THREADS, else every core.")
    var threads: Int?

    func validate() throws {
        try loadPlugins(plugins)
        try validateThreads(threads)
    }

    func run() throws {
        applyThreads(threads)
        let saved = try SavedModel.load(from: model)
        let net = saved.model
        let source = DataSource(data.data, targets: data.targets)

        let features: [Float]
        if case .csv(let path) = source {
            let delimiter = data.delimiter.first ?? ","
            var options = data
            options.target = data.target ?? saved.target
            let dropping: CSVColumn? = options.target == nil ? nil : options.targetColumn
            var read = try Dataset.csvFeatures(path: path, dropping: dropping, delimiter: delimiter, hasHeader: !data.noHeader)
            if read.featureCount == net.inputSize + 1 && data.target == nil {
                // The target column is there but was not named: it is the last, as nnb train assumes.
                read = try Dataset.csvFeatures(path: path, dropping: .last, delimiter: delimiter, hasHeader: !data.noHeader)
            }
            guard read.featureCount == net.inputSize else {
                throw NNError.shapeMismatch("\(path) has \(read.featureCount) feature columns; the model takes \(net.inputSize) (name a column to skip with --target)")
            }
            features = read.features
        } else {
            features = try source.load(data, task: saved.task, part: .test, classNames: saved.classNames).features
        }

        var outputs = try net.predict(features)
        let rows = outputs.count / net.outputSize
        var text = ""
        if saved.task == .classify {
            let names = saved.classNames ?? (0..<net.outputSize).map(String.init)
            let classes = try net.predictClasses(features)
            let probabilities = saved.loss.toProbabilities(&outputs, width: net.outputSize)
            let prefix = probabilities ? "p_" : "output_"
            text += (["prediction"] + names.map { prefix + $0 }).map(csvField).joined(separator: ",") + "\n"
            for r in 0..<rows {
                text += csvField(names[Int(classes[r])])
                for j in 0..<net.outputSize { text += "," + String(outputs[r * net.outputSize + j]) }
                text += "\n"
            }
        } else {
            let header = net.outputSize == 1 ? ["prediction"] : (0..<net.outputSize).map { "prediction_\($0)" }
            text += header.joined(separator: ",") + "\n"
            for r in 0..<rows {
                text += (0..<net.outputSize).map { String(outputs[r * net.outputSize + $0]) }.joined(separator: ",") + "\n"
            }
        }
        if let output {
            try FileIO.writeAtomically(Array(text.utf8), to: output)
            Terminal.error("wrote \(grouped(rows)) predictions to \(output)")
        } else {
            Terminal.write(text)
        }
    }
}

/// A CSV field, quoted when it holds a delimiter, a quote or a line break.
func csvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
