import ArgumentParser
import Foundation
import NNBackprop
import NNBackpropMPI

/// `nnb train`: builds a multilayer perceptron, trains it by backpropagation, reports accuracy
/// on held-out data, and optionally saves the model and plots the training curves.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network and report its accuracy on held-out data.",
        discussion: """
            With no --data it trains on generated two-spirals data (1600 training and 400 test \
            points). Examples:
              nnb train
              nnb train --data fashion-mnist --layers 256,128 --batch-size 128
              nnb train --data iris.csv --target species --output iris.safetensors
              nnb train --data houses.csv --task regress --standardize --plot curves.svg
            """
    )

    @OptionGroup(title: "Data") var data: DataOptions

    @Option(help: ArgumentHelp("Test data read like --data (default: the data's own test part, or a hold-out of --test-fraction).", valueName: "file"))
    var testData: String?

    @Option(help: ArgumentHelp("The labels or targets file that goes with --test-data.", valueName: "file"))
    var testTargets: String?

    @Option(help: "The fraction of rows held out for testing when the data has no test part and no --test-data is given (0: none).")
    var testFraction: Double = 0.2

    @Option(help: ArgumentHelp("Hidden layer sizes, comma-separated ('none' for a linear model), or the hidden layers in the model description grammar (as nnb_model_create_from_string reads it, without the input shape and the output layer, which come from the data): \"conv2d(16,3,padding=1):relu-maxpool2d(2)-flatten-128:relu\".", valueName: "layers"))
    var layers: String = "64,64"

    /// Whether --layers is in the description grammar rather than a list of sizes.
    private var layersAreDescription: Bool { layers.contains { $0.isLetter || $0 == "(" || $0 == "-" } && layers.lowercased() != "none" }

    @Option(help: "The hidden layers' activation: identity, sigmoid, tanh, relu, leaky_relu, elu, gelu, gelu_tanh, silu, softplus.")
    var activation: String = "relu"

    @Option(help: "The loss: cross_entropy, bce, mse, mae, huber. Default: cross_entropy to classify, mse to regress.")
    var loss: String?

    @Option(help: "The optimizer.")
    var optimizer: OptimizerKind = .adam

    @Option(name: .customLong("lr"), parsing: .unconditional,
            help: ArgumentHelp("The learning rate. Default: 0.001 for adam and adamw, 0.01 for the others; for irprop, the initial step size (default 0.1).", valueName: "rate"))
    var learningRate: Float?

    @Option(parsing: .unconditional, help: "Momentum for sgd and rmsprop.")
    var momentum: Float = 0

    @Option(help: "The learning-rate schedule over the epochs: constant, step, exponential, cosine (PyTorch's CosineAnnealingLR over the epochs: towards 0 after the last).")
    var schedule = "constant"

    @Option(parsing: .unconditional, help: "Epochs between the step schedule's decays (default 10).")
    var stepSize: Int?

    @Option(parsing: .unconditional, help: "The step and exponential schedules' factor (default 0.1 for step, 0.95 for exponential).")
    var gamma: Float?

    @Option(parsing: .unconditional, help: "Epochs of linear learning-rate warm-up before the schedule.")
    var warmupEpochs = 0

    @Option(parsing: .unconditional, help: "Image models: move each training sample by up to this many pixels each way (zeros fill in), seeded.")
    var augmentShift = 0

    @Flag(help: "Image models: mirror each training sample left to right with probability 1/2, seeded.")
    var augmentFlip = false

    @Option(parsing: .unconditional, help: "Passes over the training data. Default: 10, or 100 on the built-in spirals.")
    var epochs: Int?

    @Option(parsing: .unconditional, help: "Rows per mini-batch (irprop trains on the full batch).")
    var batchSize: Int = 32

    @Option(parsing: .unconditional, help: "The seed of the weights, the shuffles and the hold-out split.")
    var seed: UInt64 = 42

    @Option(parsing: .unconditional, help: "The fraction of the training rows (the last ones) used for validation each epoch.")
    var validationSplit: Double = 0

    @Flag(help: "Standardize the features (mean 0, standard deviation 1, fitted on the training rows and saved with the model).")
    var standardize = false

    @Option(parsing: .unconditional, help: "Threads for the kernels. Default: OMP_NUM_THREADS, else every core.")
    var threads: Int?

    @Option(help: "The arithmetic of the Dense and Conv2D products in training: fp32, or bf16 (bf16 inputs, fp32 accumulation and master weights; AVX512_BF16, else a note and fp32). Evaluation stays fp32.")
    var precision: String = "fp32"

    @Option(help: ArgumentHelp("Save the trained model to this file (safetensors).", valueName: "file"))
    var output: String?

    @Flag(help: "With --output, also store the optimizer's state and the training position in the file, so that --resume can continue the run exactly.")
    var checkpoint = false

    @Option(help: ArgumentHelp("Continue the run a --checkpoint file holds: the same data and options, with --epochs the total (the file's epochs count toward it). The weights come out as an uninterrupted run's.", valueName: "file"))
    var resume: String?

    @Option(help: ArgumentHelp("Write the training curves to this SVG file.", valueName: "file"))
    var plot: String?

    @Flag(help: "Print only the final summary.")
    var quiet = false

    @Option(name: .customLong("plugin"), help: ArgumentHelp("Load a plugin library first (repeatable); its activations and losses can then be named by --activation and --loss.", valueName: "file.so"))
    var plugins: [String] = []

    func validate() throws {
        try loadPlugins(plugins)
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        do { _ = try Precision(name: precision) } catch { throw ValidationError("--precision: \(error.message)") }
        if let lr = learningRate, !(lr > 0 && lr.isFinite) {
            throw ValidationError("--lr must be a positive number, got \(lr)")
        }
        guard momentum >= 0 && momentum < 1 else { throw ValidationError("--momentum must be in [0, 1), got \(momentum)") }
        try optimizer.validate(momentum: momentum)
        guard validationSplit >= 0 && validationSplit < 1 else {
            throw ValidationError("--validation-split must be in [0, 1), got \(validationSplit)")
        }
        guard testFraction >= 0 && testFraction < 1 else {
            throw ValidationError("--test-fraction must be in [0, 1), got \(testFraction)")
        }
        try validateThreads(threads)
        if testTargets != nil && testData == nil { throw ValidationError("--test-targets needs --test-data") }
        if checkpoint && output == nil { throw ValidationError("--checkpoint stores the training state in the --output file; give --output") }
        do { _ = try learningRateSchedule(epochs: epochs ?? 10) } catch { throw ValidationError(error.message) }
        do { _ = try ImageAugmentation(maxShift: augmentShift, horizontalFlip: augmentFlip) } catch { throw ValidationError("--augment-shift: \(error.message)") }
        if optimizer == .irprop && (schedule != "constant" || warmupEpochs != 0) {
            throw ValidationError("--schedule and --warmup-epochs do not apply to irprop, which adapts its own steps")
        }
        if !layersAreDescription { _ = try parseLayerSizes(layers) }
        if Plugins.activation(named: activation) == nil {
            do { _ = try Activation(name: activation) } catch { throw ValidationError(error.message) }
        }
        if let loss { do { _ = try Loss(name: loss) } catch { throw ValidationError(error.message) } }
        // Fail before training, not after it, when a result cannot be written.
        for (option, path) in [("--output", output), ("--plot", plot)] {
            guard let path else { continue }
            do { try FileIO.checkWritable(path) } catch { throw ValidationError("\(option): \(error.message)") }
        }
        if data.task == .regress, [DataSource.spirals, .fashionMNIST].contains(DataSource(data.data, targets: data.targets)) {
            throw ValidationError("--task regress needs real-valued targets; \(DataSource(data.data, targets: nil).name) has class labels")
        }
    }

    /// --schedule and its settings, over the run's epochs.
    func learningRateSchedule(epochs: Int) throws(NNError) -> LearningRateSchedule {
        try LearningRateSchedule.named(schedule, epochs: epochs, stepSize: stepSize, gamma: gamma, warmupEpochs: warmupEpochs)
    }

    @Flag(help: "Train data-parallel over MPI, under mpirun: every process takes its share of each global batch of --batch-size rows, gradients are summed with MPI, all apply the same update; rank 0 prints and writes --output. An error on any rank ends the job.")
    var distributed = false

    func run() throws {
        guard distributed else { return try train(group: nil) }
        let group: MPIGroup
        do { group = try MPIGroup() } catch { throw ValidationError("--distributed: \(error.message)") }
        // Only rank 0 reports: the others' standard output goes nowhere (errors still show, with the rank).
        if group.rank != 0 {
            let null = open("/dev/null", O_WRONLY)
            if null >= 0 { _ = dup2(null, STDOUT_FILENO) }
        }
        group.run { try train(group: group) }
        fflush(nil)
        group.finalize()
    }

    private func train(group: MPIGroup?) throws {
        applyThreads(threads)
        let task = data.task ?? .classify
        let source = DataSource(data.data, targets: data.targets)

        // Data: the training rows, and test rows from --test-data, the source's test part or a hold-out.
        var train = try source.load(data, task: task, part: .train)
        var test: Dataset?
        if let testData {
            test = try DataSource(testData, targets: testTargets).load(data, task: task, part: .test, classNames: train.classNames)
        } else if source.hasTestPart {
            test = try source.load(data, task: task, part: .test)
        } else if testFraction > 0 {
            (train, test) = try train.split(testFraction: testFraction, seed: seed)
        }
        if case .classes(_, let k) = train.targets { test = try test?.withClassCount(k) }

        // Model, loss, optimizer. The model's size is checked (2^31 parameters at most) before
        // anything is allocated, by the library.
        let model: Sequential
        if layersAreDescription {
            // The data's sample shape, the user's layers, then the output layer.
            let text = "\(train.sampleShape)-\(layers)-\(train.targets.width)"
            let parsed: (shape: Shape, layers: [any Layer])
            do { parsed = try ModelDescription.parse(text) } catch { throw ValidationError("--layers \(layers): \(error.message)") }
            model = try Sequential(layers: parsed.layers, inputShape: parsed.shape, seed: seed)
        } else {
            var layerList: [any Layer] = []
            var width = train.featureCount
            for size in try parseLayerSizes(layers) {
                layerList += try hiddenLayer(width, size, activation: activation)
                width = size
            }
            layerList.append(try Dense(width, train.targets.width))
            model = try Sequential(layers: layerList, seed: seed)
        }
        if standardize { model.scaler = Standardizer(fitting: train) }
        let lossFunction = try loss.map { (name: String) throws(NNError) in try Loss(name: name) }
            ?? (task == .classify ? .softmaxCrossEntropy() : .mse)
        let metrics: [Metric] = task == .classify ? [.accuracy] : [.mae, .r2]
        let opt = optimizer.make(learningRate: learningRate, momentum: momentum)
        let batch = optimizer == .irprop ? train.count : batchSize
        let epochCount = epochs ?? (source == .spirals ? 100 : 10)
        let rateSchedule = try learningRateSchedule(epochs: epochCount)
        let augmentation = try ImageAugmentation(maxShift: augmentShift, horizontalFlip: augmentFlip)
        do { if !augmentation.isIdentity { try augmentation.check(sampleShape: model.sampleShape) } } catch {
            throw ValidationError("--augment-shift/--augment-flip: \(error.message)")
        }

        var arithmetic = try Precision(name: precision)
        if !arithmetic.isSupported {
            // The command falls back, and says so; the library refuses (Precision.checkSupported).
            Terminal.error("note: --precision \(arithmetic): this CPU's SIMD path (\(Runtime.isa)) has no AVX512_BF16; training in fp32")
            arithmetic = .fp32
        }

        let arch = "\(architectureSummary(model)) \(activation)"
        if !quiet {
            var shape = "\(grouped(train.count)) training rows, \(test.map { "\(grouped($0.count)) test rows, " } ?? "")\(train.featureCount) features"
            if case .classes(_, let k) = train.targets { shape += ", \(k) classes" }
            print("data:  \(source.name): \(shape)")
            let rate = optimizer == .irprop ? " initial step \(learningRate ?? 0.1)" : " lr \(opt.learningRate)"
            print("model: \(arch), \(grouped(model.parameterCount)) parameters, \(lossFunction.name) loss")
            var extras = schedule == "constant" ? "" : ", \(schedule) schedule"
            if warmupEpochs > 0 { extras += ", \(warmupEpochs) warm-up epoch\(warmupEpochs == 1 ? "" : "s")" }
            if augmentShift > 0 { extras += ", shifts up to \(augmentShift) px" }
            if augmentFlip { extras += ", flips" }
            if arithmetic != .fp32 { extras += ", \(arithmetic) products" }
            print("run:   \(optimizer.rawValue)\(rate)\(extras), batch \(batch), \(epochCount) epoch\(epochCount == 1 ? "" : "s"), seed \(seed), \(threadCount()) (\(Runtime.isa))")
            if let group { print("distributed: \(group.size) MPI processes, \(grouped(batch)) rows a global batch (about \(grouped(batch / group.size)) each)") }
        }

        // Without a validation split, the test rows are scored after each epoch (for the epoch
        // lines and the plot; nothing is chosen by them).
        let monitor = validationSplit > 0 ? nil : test
        let heldOut = validationSplit > 0 ? "validation" : "test"
        var initialEpoch = 0
        if let resume {
            let progress: TrainingProgress
            do { progress = try model.resume(from: resume, optimizer: opt) } catch { throw ValidationError("--resume \(resume): \(error.message)") }
            guard progress.seed == seed else {
                throw ValidationError("--resume \(resume): the checkpoint was trained with --seed \(progress.seed), not \(seed); give the same seed (it orders the data and splits off the test rows)")
            }
            do { try progress.check(batchSize: batch, shuffle: true) } catch { throw ValidationError("--resume \(resume): \(error.message) (--batch-size)") }
            guard progress.epochsCompleted < epochCount else {
                throw ValidationError("--resume \(resume): the checkpoint has done \(progress.epochsCompleted) epochs; --epochs (\(epochCount)) is the total, so nothing is left to train")
            }
            initialEpoch = progress.epochsCompleted
            if !quiet { print("resume: \(resume), after epoch \(initialEpoch)") }
        }
        let reporter = ProgressReporter(style: quiet ? .quiet : (Terminal.isTerminal ? .bar : .lines), epochs: epochCount,
                                        heldOutPrefix: validationSplit > 0 ? "val_" : "test_")
        reporter.start()
        let started = Terminal.now()
        let history = try model.fit(train, epochs: epochCount, batchSize: batch, loss: lossFunction, optimizer: opt,
                                    validation: monitor, validationSplit: validationSplit, metrics: metrics, seed: seed, schedule: rateSchedule,
                                    callbacks: [reporter], initialEpoch: initialEpoch, augmentation: augmentation,
                                    precision: arithmetic, group: group)
        let seconds = Terminal.now() - started

        // Summary.
        let trainedRows = validationSplit > 0 ? train.count - Int((Double(train.count) * validationSplit).rounded()) : train.count
        print("trained \(arch) for \(history.epochs.count) epoch\(history.epochs.count == 1 ? "" : "s") on \(grouped(trainedRows)) rows in \(duration(seconds)) (\(rate(reporter.samplesPerSecond)) samples/s in training steps)")
        if let last = history.epochs.last {
            print("train: " + summary(last.filter { !$0.key.hasPrefix("val_") && $0.key != "lr" }))
            let valid = last.filter { $0.key.hasPrefix("val_") }
            if !valid.isEmpty && monitor == nil {
                print("validation: " + summary(Dictionary(uniqueKeysWithValues: valid.map { (String($0.key.dropFirst(4)), $0.value) })))
            }
        }
        if let test {
            let r = try model.evaluate(test, loss: lossFunction, metrics: metrics, group: group)
            print("test: " + summary(r) + " (\(grouped(test.count)) rows)")
        }
        if let output, (group?.rank ?? 0) == 0 {
            var column: String?
            if case .csv = source { column = data.target }
            try SavedModel(model: model, task: task, loss: lossFunction, target: column, classNames: train.classNames)
                .save(to: output, checkpoint: checkpoint ? (opt, TrainingProgress(epochsCompleted: initialEpoch + history.epochs.count, seed: seed,
                                                                    batchSize: batch, shuffle: true)) : nil)
            print("saved the \(checkpoint ? "checkpoint" : "model") to \(output)")
        }
        if let plot, (group?.rank ?? 0) == 0 {
            try CurvePlot(history: history, title: "\(arch), \(optimizer.rawValue), \(source.name)", heldOut: heldOut)
                .write(to: plot)
            print("wrote the training curves to \(plot)")
        }
    }

    /// "loss 0.0312, accuracy 99.25%": loss first, then the metrics by name.
    private func summary(_ values: [String: Double]) -> String {
        ProgressReporter.order(values.keys).map { "\($0) \(formatMetric($0, values[$0]!))" }.joined(separator: ", ")
    }
}
