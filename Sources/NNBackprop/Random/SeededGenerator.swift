#if canImport(FoundationEssentials)
import FoundationEssentials // not all of Foundation: keeps ICU out of libnnbackprop.so
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The library's one source of randomness: xoshiro256** seeded through SplitMix64.
///
/// The same seed gives the same stream of `UInt64`s on every platform and Swift version, and so
/// the same floats, integers and shuffles: every helper here is written out rather than taken
/// from the standard library, whose `random(in:using:)` and `shuffle(using:)` algorithms are not
/// promised to stay fixed. Gaussians use `log`, `sqrt`, `sin` and `cos` in `Double` and round to
/// `Float`, so they agree across C libraries except in astronomically rare last-bit cases.
///
/// A value type: copying a generator copies its state, and both copies then produce the same
/// stream. Use `fork()` to derive an independent generator (one per layer, per epoch...).
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64
    /// The second normal deviate of the last Box–Muller pair, returned by the next call.
    private var spareGaussian: Float?

    /// A generator whose whole state is expanded from `seed` by SplitMix64, as the xoshiro
    /// authors recommend (it never yields the all-zero state).
    public init(seed: UInt64) {
        var sm = seed
        s0 = SeededGenerator.splitMix64(&sm)
        s1 = SeededGenerator.splitMix64(&sm)
        s2 = SeededGenerator.splitMix64(&sm)
        s3 = SeededGenerator.splitMix64(&sm)
        spareGaussian = nil
    }

    /// The whole state as words (the four xoshiro words, then 1 and the spare deviate's bits
    /// when one is pending, else 0 and 0), for checkpoints.
    public var stateWords: [UInt64] {
        [s0, s1, s2, s3, spareGaussian == nil ? 0 : 1, UInt64(spareGaussian?.bitPattern ?? 0)]
    }

    /// A generator continuing from `stateWords`; throws `corruptFile` for words that are not
    /// a state (wrong count, the all-zero state, a bad flag).
    public init(stateWords w: [UInt64]) throws(NNError) {
        guard w.count == 6, w[0] | w[1] | w[2] | w[3] != 0, w[4] <= 1, w[5] <= UInt64(UInt32.max) else {
            throw .corruptFile("a random generator state is 6 words with a nonzero xoshiro state, got \(w)")
        }
        (s0, s1, s2, s3) = (w[0], w[1], w[2], w[3])
        spareGaussian = w[4] == 1 ? Float(bitPattern: UInt32(w[5])) : nil
    }

    /// One step of SplitMix64 (Steele, Lea, Flood 2014): advances `state`, returns the output.
    public static func splitMix64(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

    /// The next 64 random bits (xoshiro256**, Blackman and Vigna 2018).
    public mutating func next() -> UInt64 {
        let result = SeededGenerator.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = SeededGenerator.rotl(s3, 45)
        return result
    }

    /// A new generator seeded from this one's next output: independent streams for sub-tasks
    /// that stay reproducible from the one seed.
    public mutating func fork() -> SeededGenerator { SeededGenerator(seed: next()) }

    // MARK: - Uniform

    /// A float in [0, 1) with 24 random bits (every value a multiple of 2^-24).
    public mutating func nextFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// A double in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A float uniform in the half-open `range`, never equal to its upper bound.
    public mutating func nextFloat(in range: Range<Float>) -> Float {
        precondition(range.lowerBound.isFinite && range.upperBound.isFinite,
                     "nextFloat(in:): bounds must be finite, got \(range)")
        let v = range.lowerBound + (range.upperBound - range.lowerBound) * nextFloat()
        return v < range.upperBound ? v : range.upperBound.nextDown
    }

    /// A float uniform in the closed `range` (Glorot and He initializers use [-a, a]).
    public mutating func nextFloat(in range: ClosedRange<Float>) -> Float {
        precondition(range.lowerBound.isFinite && range.upperBound.isFinite,
                     "nextFloat(in:): bounds must be finite, got \(range)")
        let v = range.lowerBound + (range.upperBound - range.lowerBound) * nextFloat()
        return min(v, range.upperBound)
    }

    /// An integer uniform in 0..<`upperBound`, without modulo bias (Lemire's multiply-shift
    /// with rejection).
    public mutating func nextInt(below upperBound: Int) -> Int {
        precondition(upperBound > 0, "nextInt(below:): upper bound must be positive, got \(upperBound)")
        let n = UInt64(upperBound)
        var m = next().multipliedFullWidth(by: n)
        if m.low < n {
            let threshold = (0 &- n) % n
            while m.low < threshold { m = next().multipliedFullWidth(by: n) }
        }
        return Int(m.high)
    }

    // MARK: - Gaussian

    /// A standard normal deviate (mean 0, standard deviation 1) by the Box–Muller transform.
    ///
    /// Each pair of uniforms gives two deviates; the second is kept and returned by the next call.
    public mutating func nextGaussian() -> Float {
        if let spare = spareGaussian {
            spareGaussian = nil
            return spare
        }
        let u1 = 1.0 - nextDouble() // (0, 1]: log stays finite
        let u2 = nextDouble()
        let r = (-2.0 * log(u1)).squareRoot()
        let theta = 2.0 * Double.pi * u2
        spareGaussian = Float(r * sin(theta))
        return Float(r * cos(theta))
    }

    /// A normal deviate with the given mean and standard deviation.
    public mutating func nextGaussian(mean: Float, standardDeviation: Float) -> Float {
        mean + standardDeviation * nextGaussian()
    }

    /// Fills `values` with floats uniform in the closed `range`.
    public mutating func fillUniform(_ values: inout [Float], in range: ClosedRange<Float>) {
        for i in values.indices { values[i] = nextFloat(in: range) }
    }

    /// Fills `values` with normal deviates of the given mean and standard deviation.
    public mutating func fillGaussian(_ values: inout [Float], mean: Float = 0, standardDeviation: Float = 1) {
        for i in values.indices { values[i] = nextGaussian(mean: mean, standardDeviation: standardDeviation) }
    }

    // MARK: - Permutations

    /// Shuffles `elements` in place by Fisher–Yates (Durstenfeld's form: for i from the last
    /// position down to 1, swap element i with a uniform j in 0...i).
    public mutating func shuffle<C: MutableCollection & RandomAccessCollection>(_ elements: inout C) {
        let n = elements.count
        guard n > 1 else { return }
        var i = n - 1
        while i > 0 {
            let j = nextInt(below: i + 1)
            if j != i {
                elements.swapAt(elements.index(elements.startIndex, offsetBy: i),
                                elements.index(elements.startIndex, offsetBy: j))
            }
            i -= 1
        }
    }

    /// A uniformly random permutation of 0..<`count`.
    public mutating func permutation(_ count: Int) -> [Int] {
        precondition(count >= 0, "permutation: count must be non-negative, got \(count)")
        var p = Array(0..<count)
        shuffle(&p)
        return p
    }
}
