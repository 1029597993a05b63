import Foundation

/// A benchmark peer: `peerScript` run by a Python interpreter that has the peer's module.
struct Peer {
    enum Kind: String { case numpy, torch, jax }

    let kind: Kind
    /// The interpreter: a name on PATH or a path.
    let python: String
    /// The module's version, for the report.
    let version: String

    /// The first of `candidates` that imports the peer's module, or nil when none does.
    static func find(_ kind: Kind, candidates: [String]) -> Peer? {
        var seen = Set<String>()
        for python in candidates where seen.insert(python).inserted {
            guard let out = run(python, ["-c", "import \(kind.rawValue) as m; print(m.__version__)"], environment: nil),
                  out.status == 0 else { continue }
            let version = out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            return Peer(kind: kind, python: python, version: version)
        }
        return nil
    }

    /// Seconds of each timed epoch of the MLP peer script, or a message saying why the run failed.
    func epochSeconds(script: String, images: String, labels: String, samples: Int, batch: Int, threads: Int,
                      repeats: Int, optimizer: String) -> Result<[Double], PeerFailure> {
        let args = [kind.rawValue, images, labels, String(samples), String(batch), String(threads), String(repeats), optimizer]
        return output(of: script, args, threads: threads).flatMap { lines in
            let times = lines.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard times.count == repeats else {
                return .failure(PeerFailure(message: "\(kind.rawValue) peer printed \(times.count) epoch times, not \(repeats)"))
            }
            return .success(times)
        }
    }

    /// The lines `script` prints with `arguments`, run with `threads` threads in every pool, or
    /// a message (with the end of its standard error) saying why it failed.
    func output(of script: String, _ arguments: [String], threads: Int) -> Result<[String], PeerFailure> {
        var env = ProcessInfo.processInfo.environment
        // OpenBLAS picks its own kernel and cache sizes for this CPU, and every pool gets the
        // same thread count as nnb. PyTorch's OpenMP threads must not spin while its BLAS runs.
        env["OPENBLAS_CORETYPE"] = nil
        env["OPENBLAS_L2_SIZE"] = nil
        for key in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] { env[key] = String(threads) }
        if kind == .torch { env["OMP_WAIT_POLICY"] = "passive" }
        if kind == .jax { env["JAX_PLATFORMS"] = "cpu" }
        guard let out = Peer.run(python, [script] + arguments, environment: env) else {
            return .failure(PeerFailure(message: "\(python) could not be started"))
        }
        guard out.status == 0 else {
            let tail = out.stderr.split(separator: "\n").suffix(3).joined(separator: " | ")
            return .failure(PeerFailure(message: "\(kind.rawValue) peer failed (exit \(out.status)): \(tail)"))
        }
        return .success(out.stdout.split(separator: "\n").map(String.init))
    }

    /// Runs `executable` (looked up on PATH) with `arguments`; nil when it cannot start.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]?)
        -> (status: Int32, stdout: String, stderr: String)? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [executable] + arguments
        if let environment { p.environment = environment }
        // Standard error goes to a temporary file, so only one pipe is read and none can fill up.
        let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("nnb-peer-\(UUID().uuidString).err").path
        guard FileManager.default.createFile(atPath: errPath, contents: nil),
              let errFile = FileHandle(forWritingAtPath: errPath) else { return nil }
        defer {
            try? errFile.close()
            try? FileManager.default.removeItem(atPath: errPath)
        }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = errFile
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let errText = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return (p.terminationStatus, String(decoding: outData, as: UTF8.self), errText)
    }
}

struct PeerFailure: Error {
    let message: String
}
