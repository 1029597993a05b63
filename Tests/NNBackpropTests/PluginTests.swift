import CKernels
import Foundation
import NNBackprop
import NNBackpropCAPI // C plugin libraries: Plugins.loadLibrary
import XCTest

/// Mish, x tanh(softplus(x)), written here in Swift as a plugin activation.
final class SwiftMish: CustomActivation {
    let name: String
    init(name: String = "swift_mish") { self.name = name }

    private static func f(_ x: Float) -> (y: Float, dy: Float) {
        let sp = x > 20 ? x : log1p(exp(x))
        let t = tanh(sp), s = 1 / (1 + exp(-x))
        return (x * t, t + x * s * (1 - t * t))
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Self.f(x[i]).y }
    }

    func backward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                  _ y: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { dx[i] = dy[i] * Self.f(x[i]).dy }
    }
}

/// Mean squared error written as a plugin, to compare with the built-in one.
final class SwiftSquaredError: CustomLoss {
    let name = "swift_squared_error"
    func loss(gradient: UnsafeMutablePointer<Float>?, predictions: UnsafePointer<Float>, targets: UnsafePointer<Float>,
              rows: Int, cols: Int) -> Float {
        let n = rows * cols
        var sum = 0.0
        for i in 0..<n {
            let d = predictions[i] - targets[i]
            sum += Double(d * d)
            gradient?[i] = 2 * d / Float(n)
        }
        return Float(sum / Double(n))
    }
}

/// A GEMM replacement that counts its calls and delegates to the reference kernel.
final class CountingGEMM: GEMMKernel, @unchecked Sendable {
    let name = "counting_reference"
    let lock = NSLock()
    private var calls = 0
    var count: Int { lock.withLock { calls } }

    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
               b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        lock.withLock { calls += 1 }
        nnk_sgemm_ref(transA ? NNK_TRANS : NNK_NO_TRANS, transB ? NNK_TRANS : NNK_NO_TRANS, m, n, k, alpha, a, lda, b, ldb,
                      beta, c, ldc)
    }
}

final class PluginTests: XCTestCase {
    /// Registered once per process (a registry entry lives for the process).
    private static let registered: Void = {
        try! Plugins.register(activation: SwiftMish())
        try! Plugins.register(loss: SwiftSquaredError())
    }()

    override func setUp() {
        super.setUp()
        _ = Self.registered
    }

    private func xor() throws -> Dataset {
        try Dataset(features: [0, 0, 0, 1, 1, 0, 1, 1], featureCount: 2, targets: .classes([0, 1, 1, 0], classCount: 2))
    }

    func testRegistrationRules() {
        XCTAssertNotNil(Plugins.activation(named: "swift_mish"))
        XCTAssertThrowsError(try Plugins.register(activation: SwiftMish())) { error in
            XCTAssertTrue("\(error)".contains("already registered"), "\(error)")
        }
        XCTAssertThrowsError(try Plugins.register(activation: SwiftMish(name: "relu"))) { error in
            XCTAssertTrue("\(error)".contains("built-in"), "\(error)")
        }
        for bad in ["", "Mish", "9lives", "has space", String(repeating: "a", count: 65)] {
            XCTAssertThrowsError(try Plugins.register(activation: SwiftMish(name: bad)), "name '\(bad)'")
            XCTAssertNil(Plugins.activation(named: bad), "a refused registration must leave nothing behind")
        }
        XCTAssertThrowsError(try CustomActivationLayer(name: "no_such_plugin")) { error in
            XCTAssertTrue("\(error)".contains("no_such_plugin"), "\(error)")
        }
        XCTAssertThrowsError(try Loss(name: "no_such_loss"))
        XCTAssertEqual(try Loss(name: "swift_squared_error"), .custom("swift_squared_error"))
    }

    /// Backprop goes through the plugin's derivative: gradients agree with finite differences.
    func testGradientCheckThroughPluginActivation() throws {
        let d = try randomDataset(rows: 6, features: 4, targets: .classes([0, 1, 2, 1, 0, 2], classCount: 3))
        let mish = try CustomActivationLayer(name: "swift_mish")
        let model = try Sequential(seed: 3) {
            try Dense(4, 5)
            mish
            try Dense(5, 3)
        }
        try gradientCheck(model, d, .softmaxCrossEntropy())
    }

    func testNetworkWithPluginActivationLearnsXOR() throws {
        let mish = try CustomActivationLayer(name: "swift_mish")
        let model = try Sequential(seed: 1) {
            try Dense(2, 8)
            mish
            try Dense(8, 2)
        }
        try model.fit(try xor(), epochs: 300, batchSize: 4, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 0.05))
        XCTAssertEqual(try model.predictClasses([0, 0, 0, 1, 1, 0, 1, 1]), [0, 1, 1, 0])
    }

    /// A plugin loss gives the same loss and gradients as the built-in loss it reimplements.
    func testPluginLossMatchesBuiltIn() throws {
        let d = try randomDataset(rows: 5, features: 3, targets: .values((0..<10).map { Float($0) * 0.1 }, width: 2))
        let model = try Sequential(seed: 2) { try Dense(3, 4, activation: .tanh); try Dense(4, 2) }
        let builtIn = try model.computeGradients(d, loss: .mse)
        let g1 = Array(model.gradients)
        let custom = try model.computeGradients(d, loss: try Loss(name: "swift_squared_error"))
        XCTAssertEqual(custom, builtIn, accuracy: 1e-6)
        for (a, b) in zip(g1, model.gradients) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        try gradientCheck(model, d, Loss.custom("swift_squared_error"))
    }

    /// The model file names the plugin; loading it without that plugin fails and says which.
    func testModelFileRecordsPlugins() throws {
        let mish = try CustomActivationLayer(name: "swift_mish")
        let model = try Sequential(seed: 5) { try Dense(2, 3); mish; try Dense(3, 2) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnb-plugin-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.safetensors").path
        try model.save(to: path)
        let loaded = try Sequential.load(from: path)
        XCTAssertEqual(try loaded.predict([0.3, -0.7]), try model.predict([0.3, -0.7]))

        // The same file naming a plugin this process does not have.
        var st = try SafeTensors(contentsOf: path)
        XCTAssertEqual(st.metadata["plugins"], "swift_mish")
        st.metadata["plugins"] = "absent_plugin"
        st.metadata["architecture"] = st.metadata["architecture"]!.replacingOccurrences(of: "swift_mish", with: "absent_plugin")
        let other = dir.appendingPathComponent("other.safetensors").path
        try st.write(to: other)
        XCTAssertThrowsError(try Sequential.load(from: other)) { error in
            XCTAssertTrue("\(error)".contains("absent_plugin"), "\(error)")
        }
    }

    /// A replaced GEMM is what training and inference use; removing it restores the built-in.
    func testGEMMReplacement() throws {
        let model = try Sequential(seed: 4) { try Dense(2, 16, activation: .relu); try Dense(16, 2) }
        let builtIn = try model.predict([0.5, -0.25, 1, 2])
        let kernel = CountingGEMM()
        Plugins.replaceGEMM(with: kernel)
        defer { Plugins.replaceGEMM(with: nil) }
        let replaced = try model.predict([0.5, -0.25, 1, 2])
        XCTAssertGreaterThan(kernel.count, 0, "the replacement was not called")
        for (a, b) in zip(replaced, builtIn) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        try model.fit(try xor(), epochs: 2, batchSize: 4, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1))
        let during = kernel.count
        XCTAssertGreaterThan(during, 2)
        Plugins.replaceGEMM(with: nil)
        _ = try model.predict([0.5, -0.25])
        XCTAssertEqual(kernel.count, during, "after removal the built-in GEMM must run")
    }

    /// A built-in activation's kernel replaced by a plugin (here: Mish standing in for tanh).
    func testActivationKernelReplacement() throws {
        let model = try Sequential(seed: 6) { try Dense(2, 3, activation: .tanh) }
        let before = try model.predict([1, 2])
        Plugins.replaceKernel(of: .tanh, with: SwiftMish(name: "kernel_for_tanh"))
        let replaced = try model.predict([1, 2])
        Plugins.replaceKernel(of: .tanh, with: nil)
        XCTAssertNotEqual(replaced, before)
        XCTAssertEqual(try model.predict([1, 2]), before)
    }

    /// The C example plugins (examples/plugins), compiled here and loaded with dlopen: a
    /// network using the Mish activation and the focal loss from them passes the gradient
    /// check, and a second load of the same library is refused as a duplicate.
    func testCPluginLibrariesFromSwift() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnb-cplugins-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func compile(_ source: String, _ output: String) throws -> String {
            let out = dir.appendingPathComponent(output).path
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["cc", "-std=c99", "-O2", "-fPIC", "-shared", "-I", root.appendingPathComponent("include").path,
                           root.appendingPathComponent("examples/plugins/" + source).path, "-o", out, "-lm"]
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw XCTSkip("no C compiler to build \(source)") }
            return out
        }
        let mish = try compile("mish.c", "libnnb_mish.so"), focal = try compile("focal_loss.c", "libnnb_focal.so")
        try Plugins.loadLibrary(path: mish)
        try Plugins.loadLibrary(path: focal)
        XCTAssertThrowsError(try Plugins.loadLibrary(path: mish)) { error in
            guard case NNError.duplicateName = error else { return XCTFail("expected duplicateName, got \(error)") }
        }
        XCTAssertThrowsError(try Plugins.loadLibrary(path: dir.appendingPathComponent("missing.so").path)) { error in
            guard case NNError.pluginError = error else { return XCTFail("expected pluginError, got \(error)") }
        }
        let layer = try CustomActivationLayer(name: "mish")
        let model = try Sequential(seed: 8) {
            try Dense(3, 5)
            layer
            try Dense(5, 2)
        }
        let d = try randomDataset(rows: 7, features: 3, targets: .values([1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0.5, 0.5, 0, 1], width: 2))
        try gradientCheck(model, d, try Loss(name: "focal"))
        try gradientCheck(model, d, .mse)
    }
}
