// Trains a small network on two interleaved spirals, predicts, and prints its accuracy.
// Run it with `swift run` in this folder.

import Foundation
import NNBackprop

// 2000 generated points on two spiral arms: 1600 to learn from, 400 to test on.
let (train, test) = try Dataset.spirals(count: 2000, seed: 0).split(testFraction: 0.2, seed: 0)

// 2 inputs -> 64 -> 64 -> 2 class scores (logits).
let model = try Sequential(seed: 42) {
    try Dense(2, 64, activation: .relu)
    try Dense(64, 64, activation: .relu)
    try Dense(64, 2)
}

// Mini-batch backpropagation with Adam; the history holds each epoch's loss and accuracy.
let history = try model.fit(train, epochs: 100, batchSize: 32, loss: .softmaxCrossEntropy(),
                            optimizer: Adam(learningRate: 1e-3), metrics: [.accuracy], seed: 42)
print(String(format: "epoch %d: loss %.4f, training accuracy %.2f%%",
             history.epochs.count, history["loss"].last!, history["accuracy"].last! * 100))

// Predict the class of every test point and count the right ones.
let predicted = try model.predictClasses(test.features)
let truth = test.targets.classIndices!
let correct = zip(predicted, truth).filter { $0 == $1 }.count

// One point on its own: the scores of the two classes, turned into probabilities.
let scores = try model.predict(sample: [0.0, -0.5])
let e = scores.map { exp($0 - scores.max()!) }
print(String(format: "the point (0, -0.5) is on spiral %d with probability %.3f",
             e[1] > e[0] ? 1 : 0, e.max()! / e.reduce(0, +)))

// Save and load: the loaded model predicts the same classes.
let file = FileManager.default.temporaryDirectory.appendingPathComponent("spirals-example.safetensors").path
try model.save(to: file)
let loaded = try Sequential.load(from: file)
try? FileManager.default.removeItem(atPath: file)
let reloaded = try loaded.predictClasses(test.features)
print("the saved and loaded model predicts \(reloaded == predicted ? "the same" : "DIFFERENT") classes")

print(String(format: "test accuracy: %.2f%% (%d of %d)", Double(correct) / Double(truth.count) * 100, correct, truth.count))
