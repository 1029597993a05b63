import ArgumentParser
import NNBackprop

/// `nnb evaluate`: a saved model's loss and metrics on labelled data.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report a saved model's loss and metrics on labelled data.",
        discussion: """
            Data sources with a test part (fashion-mnist, an MNIST directory, spirals) are \
            evaluated on it. A CSV file is read with the target column and class names the \
            model was trained with, unless --target says otherwise.
            """
    )

    @Option(help: ArgumentHelp("The model file written by nnb train --output.", valueName: "file"))
    var model: String

    @OptionGroup(title: "Data") var data: DataOptions

    @Option(name: .customLong("plugin"), help: ArgumentHelp("Load a plugin library first (repeatable): a model that uses a plugin's activation needs it.", valueName: "file.so"))
    var plugins: [String] = []

    @Option(parsing: .unconditional, help: "Rows per forward pass.")
    var batchSize: Int = 256

    @Option(parsing: .unconditional, help: "Threads for the kernels. Default: OMP_NUM_THREADS, else every core.")
    var threads: Int?

    func validate() throws {
        try loadPlugins(plugins)
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        try validateThreads(threads)
        // Scoring a model on data it was not meant for is never what was asked: no default.
        guard data.data != nil else {
            throw ValidationError("--data is required: the labelled data to evaluate on (a CSV file, an IDX or .npy pair, fashion-mnist, or spirals)")
        }
    }

    func run() throws {
        applyThreads(threads)
        let saved = try SavedModel.load(from: model)
        var options = data
        if options.target == nil { options.target = saved.target }
        let task = data.task ?? saved.task
        let source = DataSource(data.data, targets: data.targets)
        var rows = try source.load(options, task: task, part: .test, classNames: saved.classNames)
        rows = try rows.withClassCount(saved.model.outputSize)
        let metrics: [Metric] = task == .classify ? [.accuracy] : [.mse, .mae, .r2]
        let started = Terminal.now()
        let results = try saved.model.evaluate(rows, loss: saved.loss, metrics: metrics, batchSize: batchSize)
        let seconds = Terminal.now() - started
        print("model: \(model) (\(architectureSummary(saved.model)), \(saved.loss.name))")
        print("data:  \(source.name): \(grouped(rows.count)) rows")
        for key in ProgressReporter.order(results.keys) {
            print("\(key): \(formatMetric(key, results[key]!))")
        }
        print("time:  \(duration(seconds)) (\(rate(Double(rows.count) / seconds)) rows/s)")
    }
}
