// Shared by every libFuzzer harness in this folder (scripts/fuzz.sh compiles it into each one):
// a per-process scratch directory in RAM, whole-file writes, gzip, bitwise float comparison,
// the "known finding" switches and the way a harness reports a finding.

import CZlib
import NNBackprop
#if canImport(Glibc)
import Glibc
#endif

enum Fuzz {
    /// The input as an array (libFuzzer may pass a null pointer for an empty input).
    static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
        guard let data, size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// A directory of this process's own, in /dev/shm when it is writable (the loaders read
    /// paths, and RAM keeps a file write per input cheap), removed at exit.
    static let directory: String = {
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp")
        let dir = "\(base)/nnb-fuzz-\(getpid())"
        mkdir(dir, 0o700)
        atexit { Fuzz.removeDirectory() }
        return dir
    }()

    static func path(_ name: String) -> String { directory + "/" + name }

    /// Writes `bytes` to `name` in the scratch directory (plain POSIX: the harness must not
    /// depend on the library's own writer) and returns the path.
    @discardableResult
    static func write(_ bytes: [UInt8], to name: String) -> String {
        let p = path(name)
        let fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { fail("harness: cannot create \(p): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { fail("harness: cannot write \(p): \(String(cString: strerror(errno)))") }
                done += n
            }
        }
        return p
    }

    private static func removeDirectory() {
        guard let d = opendir(directory) else { return }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { unlink(path(name)) }
        }
        closedir(d)
        rmdir(directory)
    }

    /// `input` as one gzip member (zlib's deflate with the gzip wrapper, windowBits 15 + 16).
    static func gzip(_ input: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else { fail("harness: deflateInit2 failed") }
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 64)
        let produced: Int = input.withUnsafeBufferPointer { inBuf in
            out.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
                stream.avail_in = UInt32(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = UInt32(outBuf.count)
                guard deflate(&stream, Z_FINISH) == Z_STREAM_END else { fail("harness: deflate did not finish") }
                return outBuf.count - Int(stream.avail_out)
            }
        }
        out.removeLast(out.count - produced)
        return out
    }

    /// Equal bit for bit, except that any NaN equals any NaN.
    static func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
    }

    /// Known findings the harnesses can step around, so a long run is not stopped by the same
    /// crash again: NNB_FUZZ_SKIP=name,name (each harness says which names it knows).
    static let skips: Set<String> = {
        guard let v = getenv("NNB_FUZZ_SKIP") else { return [] }
        return Set(String(cString: v).split(separator: ",").map { String($0) })
    }()

    static func skipping(_ name: String) -> Bool { skips.contains(name) }

    /// A number from the environment, or `d`.
    static func limit(_ name: String, default d: Int) -> Int {
        guard let v = getenv(name), let n = Int(String(cString: v)) else { return d }
        return n
    }

    /// Reports a finding that is not a crash by itself (a round trip that changes the model)
    /// and aborts, so libFuzzer saves the input.
    static func fail(_ message: String) -> Never {
        log("FUZZ FINDING: \(message)")
        removeDirectory() // abort() skips atexit; libFuzzer has the input
        abort()
    }

    /// A line on stderr (fd 2: the C `stderr` global is not concurrency-safe Swift).
    static func log(_ line: String) {
        var text = Array((line + "\n").utf8)
        _ = text.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
