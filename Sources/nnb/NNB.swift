import ArgumentParser
import NNBackprop

/// `nnb`: train, evaluate and run NNBackprop networks from the command line.
@main
struct NNB: ParsableCommand {
    /// The library version (one source: `Runtime.version`).
    static let version = Runtime.versionString

    static let configuration = CommandConfiguration(
        commandName: "nnb",
        abstract: "Train, evaluate and run neural networks (NNBackprop).",
        discussion: """
            With no arguments, `nnb train` trains a network on a generated two-spirals data set \
            and prints its test accuracy. `nnb <subcommand> --help` describes each subcommand.
            """,
        version: NNB.version,
        subcommands: [Train.self, Predict.self, Evaluate.self, Export.self, Quantize.self, Info.self, Bench.self]
    )
}
