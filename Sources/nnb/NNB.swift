import ArgumentParser

/// `nnb`: train, evaluate and run NNBackprop networks from the command line.
@main
struct NNB: ParsableCommand {
    /// The library version; the same as NNB_VERSION_MAJOR/MINOR/PATCH in include/nnbackprop.h.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "nnb",
        abstract: "Train, evaluate and run neural networks (NNBackprop).",
        discussion: """
            With no arguments, `nnb train` trains a network on a generated two-spirals data set \
            and prints its test accuracy. `nnb <subcommand> --help` describes each subcommand.
            """,
        version: NNB.version,
        subcommands: [Train.self, Predict.self, Evaluate.self, Info.self, Bench.self]
    )
}
