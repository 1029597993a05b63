/// Light augmentation of image batches in training, as torchvision's `RandomCrop(size,
/// padding: maxShift)` plus `RandomHorizontalFlip()`: each sample of a batch is moved by dy, dx
/// drawn uniformly from -maxShift...maxShift (the pixels moved in are 0, the padding value of
/// the raw data, before the model's scaler), and mirrored left to right with probability 1/2
/// when `horizontalFlip` is on. Samples are (C, H, W) or (H, W): every plane of a sample gets
/// the same move. `fit` draws the moves from a generator seeded by its seed, the epoch and the
/// batch, so a run (and a resumed run) is reproducible; evaluation never augments.
public struct ImageAugmentation: Sendable, Equatable {
    /// The largest move in pixels, in each direction (0: none).
    public let maxShift: Int
    /// Whether samples are mirrored left to right, each with probability 1/2.
    public let horizontalFlip: Bool

    /// Throws `invalidArgument` for a negative shift or one above 64 pixels.
    public init(maxShift: Int = 0, horizontalFlip: Bool = false) throws(NNError) {
        guard (0...64).contains(maxShift) else {
            throw .invalidArgument("augmentation: maxShift must be in 0...64 pixels, got \(maxShift)")
        }
        self.maxShift = maxShift
        self.horizontalFlip = horizontalFlip
    }

    /// Whether it changes anything.
    public var isIdentity: Bool { maxShift == 0 && !horizontalFlip }

    /// Throws `shapeMismatch` unless samples of `shape` are images (rank 2 or 3) at least
    /// maxShift + 1 pixels high and wide.
    public func check(sampleShape shape: Shape) throws(NNError) {
        guard shape.rank == 2 || shape.rank == 3 else {
            throw .shapeMismatch("image augmentation needs samples of shape (C, H, W) or (H, W); the model takes samples of shape \(shape)")
        }
        let (h, w) = (shape.dimensions[shape.rank - 2], shape.dimensions[shape.rank - 1])
        guard maxShift < h && maxShift < w else {
            throw .shapeMismatch("image augmentation: a shift of up to \(maxShift) pixels leaves nothing of \(h)x\(w) images")
        }
    }

    /// The generator of the moves for batch `batch` of epoch `epoch` in a run seeded `seed`.
    static func generator(seed: UInt64, epoch: Int, batch: Int) -> SeededGenerator {
        // A splitMix64 round after each input, so no two (seed, epoch, batch) share a stream
        // by an offset between their inputs.
        var state = seed ^ 0x5A17_A06E_17A7_1000
        state = SeededGenerator.splitMix64(&state) ^ UInt64(truncatingIfNeeded: epoch)
        state = SeededGenerator.splitMix64(&state) ^ UInt64(truncatingIfNeeded: batch)
        return SeededGenerator(seed: SeededGenerator.splitMix64(&state))
    }

    /// Moves and mirrors each of the `rows` samples of `shape` in `x` in place, drawing from
    /// `generator`: per sample, dy, then dx (when maxShift > 0), then the flip (when on).
    /// `plane` is scratch of at least H * W floats.
    func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, shape: Shape, generator: inout SeededGenerator,
               plane: UnsafeMutablePointer<Float>) {
        let h = shape.dimensions[shape.rank - 2], w = shape.dimensions[shape.rank - 1]
        let planes = shape.count / (h * w)
        let span = 2 * maxShift + 1
        for r in 0..<rows {
            let dy = maxShift > 0 ? generator.nextInt(below: span) - maxShift : 0
            let dx = maxShift > 0 ? generator.nextInt(below: span) - maxShift : 0
            let flip = horizontalFlip && generator.next() >> 63 == 1
            if dy == 0 && dx == 0 && !flip { continue }
            ImageAugmentation.move(x + r * planes * h * w, planes: planes, height: h, width: w, dy: dy, dx: dx, flip: flip, plane: plane)
        }
    }

    /// Moves one sample of `planes` planes of height x width in place: out(y, x) = in(y + dy,
    /// x' + dx) with x' = width - 1 - x when `flip`, else x; 0 where that falls outside.
    /// `plane` is scratch of height * width floats.
    static func move(_ sample: UnsafeMutablePointer<Float>, planes: Int, height h: Int, width w: Int,
                     dy: Int, dx: Int, flip: Bool, plane: UnsafeMutablePointer<Float>) {
        for p in 0..<planes {
            let image = sample + p * h * w
            plane.update(from: image, count: h * w)
            for y in 0..<h {
                let row = image + y * w
                let sy = y + dy
                guard sy >= 0 && sy < h else { row.update(repeating: 0, count: w); continue }
                let source = plane + sy * w
                for x in 0..<w {
                    let sx = (flip ? w - 1 - x : x) + dx
                    row[x] = sx >= 0 && sx < w ? source[sx] : 0
                }
            }
        }
    }
}
