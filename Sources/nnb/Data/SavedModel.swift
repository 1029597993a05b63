import Foundation
import NNBackprop

/// A model file as nnb writes it: the library's safetensors model file plus what the command
/// needs to use it again, in `__metadata__` keys of its own ("nnb.task", "nnb.loss",
/// "nnb.target", "nnb.class_names" as a JSON array), which the library ignores.
struct SavedModel {
    var model: Sequential
    var task: Task
    var loss: Loss
    /// The CSV target column the model was trained on, when the data was a CSV file.
    var target: String?
    /// Names of the classes (CSV labels, Fashion-MNIST's names), index i naming class i.
    var classNames: [String]?

    /// Writes the model; with `checkpoint`, a training checkpoint that `nnb train --resume` continues.
    func save(to path: String, checkpoint: (optimizer: any Optimizer, progress: TrainingProgress)? = nil) throws(NNError) {
        var st: SafeTensors
        if let checkpoint {
            st = try model.safeTensors(optimizer: checkpoint.optimizer, progress: checkpoint.progress)
        } else {
            st = try model.safeTensors()
        }
        st.metadata["nnb.task"] = task.rawValue
        st.metadata["nnb.loss"] = loss.name
        if let target { st.metadata["nnb.target"] = target }
        if let classNames,
           let json = try? JSONSerialization.data(withJSONObject: classNames, options: [.withoutEscapingSlashes]) {
            st.metadata["nnb.class_names"] = String(decoding: json, as: UTF8.self)
        }
        try st.write(to: path)
    }

    /// Loads a model file. Files written by the library alone (no nnb keys) are read as
    /// classifiers trained with cross-entropy when they have two or more outputs, else as
    /// regressors trained with MSE.
    static func load(from path: String) throws(NNError) -> SavedModel {
        let model = try Sequential.load(from: path)
        // The file again, for the metadata (model files are small; the library keeps none of it).
        let metadata = try SafeTensors(contentsOf: path).metadata
        let task = metadata["nnb.task"].flatMap(Task.init(rawValue:)) ?? (model.outputSize >= 2 ? .classify : .regress)
        let loss = try metadata["nnb.loss"].map { (name: String) throws(NNError) in try Loss(name: name) }
            ?? (task == .classify ? .softmaxCrossEntropy() : .mse)
        var classNames: [String]?
        if let text = metadata["nnb.class_names"] {
            guard let names = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String],
                  names.count == model.outputSize else {
                throw .corruptFile("\(path): metadata 'nnb.class_names' is not a JSON array of \(model.outputSize) strings")
            }
            classNames = names
        }
        return SavedModel(model: model, task: task, loss: loss, target: metadata["nnb.target"], classNames: classNames)
    }
}

extension Dataset {
    /// This data set with `.classes` targets counted over `classCount` classes (a test file
    /// that lacks the last classes still matches a model's outputs); others unchanged.
    func withClassCount(_ classCount: Int) throws(NNError) -> Dataset {
        guard case .classes(let labels, let k) = targets, k < classCount else { return self }
        return try Dataset(features: features, featureCount: featureCount, targets: .classes(labels, classCount: classCount),
                           featureNames: featureNames, classNames: nil)
    }
}
