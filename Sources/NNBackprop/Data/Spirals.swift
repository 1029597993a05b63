#if canImport(FoundationEssentials)
import FoundationEssentials // not all of Foundation: keeps ICU out of libnnbackprop.so
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

extension Dataset {
    /// Interleaved spirals in the plane, one arm per class: a generated classification set that
    /// needs a non-linear model (Lang and Witbrock's two-spirals problem for `classes: 2`).
    ///
    /// Point i of class c lies at radius t = (i + 1) / perClass on the arm turned by 2 pi c /
    /// classes: (t cos a, t sin a) with a = 2 pi (turns t + c / classes), plus Gaussian noise of
    /// standard deviation `noise` on each coordinate. `count` rows in all (perClass = count /
    /// classes, so count is rounded down to a multiple of `classes`), in an order shuffled by
    /// `SeededGenerator(seed:)`: the same arguments give the same data everywhere. Features
    /// (count, 2) named "x" and "y", in about [-1, 1]; targets `.classes` named "spiral 0",
    /// "spiral 1", ...
    ///
    /// Throws `invalidArgument` for fewer than 2 classes, fewer than one point per class, a
    /// non-positive or non-finite number of turns, or a negative or non-finite noise.
    public static func spirals(count: Int = 2000, classes: Int = 2, turns: Double = 1.5,
                               noise: Double = 0.03, seed: UInt64 = 0) throws(NNError) -> Dataset {
        guard classes >= 2 else { throw .invalidArgument("spirals: classes must be at least 2, got \(classes)") }
        let perClass = count / classes
        guard perClass >= 1 else {
            throw .invalidArgument("spirals: count \(count) gives no point per class for \(classes) classes")
        }
        guard turns > 0 && turns.isFinite else { throw .invalidArgument("spirals: turns must be positive, got \(turns)") }
        guard noise >= 0 && noise.isFinite else { throw .invalidArgument("spirals: noise must be non-negative, got \(noise)") }

        var g = SeededGenerator(seed: seed)
        let n = perClass * classes
        var points = [Float](repeating: 0, count: n * 2)
        var labels = [Int32](repeating: 0, count: n)
        for c in 0..<classes {
            for i in 0..<perClass {
                let t = Double(i + 1) / Double(perClass)
                let a = 2 * Double.pi * (turns * t + Double(c) / Double(classes))
                let row = c * perClass + i
                points[2 * row] = Float(t * cos(a)) + Float(noise) * g.nextGaussian()
                points[2 * row + 1] = Float(t * sin(a)) + Float(noise) * g.nextGaussian()
                labels[row] = Int32(c)
            }
        }
        let ordered = Dataset(validatedFeatures: points, featureCount: 2, targets: .classes(labels, classCount: classes),
                              featureNames: ["x", "y"], classNames: (0..<classes).map { "spiral \($0)" })
        // Shuffled so that any tail (a validation split) holds every class.
        return ordered.uncheckedSubset(g.permutation(n))
    }
}
