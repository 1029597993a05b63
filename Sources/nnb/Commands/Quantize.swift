import ArgumentParser
import NNBackprop

/// `nnb quantize`: post-training int8 quantization of a saved model.
struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a saved model's dense layers to int8 for inference (post-training).",
        discussion: """
            Calibrates each dense layer's input range on the first --rows training rows of \
            --data (read as nnb train read them), quantizes the weights per output channel, \
            and writes the model to --output; predict and evaluate then run it in int8. The \
            fp32 weights stay in the file. Conv2D layers stay fp32.
            """
    )

    @Option(help: ArgumentHelp("The model file written by nnb train --output.", valueName: "file"))
    var model: String

    @OptionGroup(title: "Data") var data: DataOptions

    @Option(parsing: .unconditional, help: "Calibration rows (the first ones of the training part).")
    var rows: Int = 1000

    @Option(help: ArgumentHelp("Write the quantized model to this file (safetensors).", valueName: "file"))
    var output: String

    @Option(name: .customLong("plugin"), help: ArgumentHelp("Load a plugin library first (repeatable): a model that uses a plugin's activation needs it.", valueName: "file.so"))
    var plugins: [String] = []

    func validate() throws {
        try loadPlugins(plugins)
        guard rows >= 1 else { throw ValidationError("--rows must be at least 1, got \(rows)") }
        guard data.data != nil else {
            throw ValidationError("--data is required: the rows to calibrate on (as nnb train read them)")
        }
    }

    func run() throws {
        let saved = try SavedModel.load(from: model)
        var options = data
        if options.target == nil { options.target = saved.target }
        let source = DataSource(data.data, targets: data.targets)
        let calibration = try source.load(options, task: data.task ?? saved.task, part: .train, classNames: saved.classNames)
        try saved.model.quantizeInt8(calibration: calibration, rows: rows)
        try saved.model.save(to: output)
        print("model: \(model) (\(architectureSummary(saved.model)))")
        print("int8:  \(saved.model.layers.filter { ($0 as? Dense)?.int8 != nil }.count) dense layers, calibrated on \(grouped(min(rows, calibration.count))) rows of \(source.name)")
        print("wrote \(output)")
    }
}
