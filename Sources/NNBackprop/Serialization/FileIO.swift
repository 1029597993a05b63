import CZlib
#if canImport(FoundationEssentials)
import FoundationEssentials // not all of Foundation: keeps ICU out of libnnbackprop.so
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads (optionally gunzipped) and atomic whole-file writes, with POSIX errors
/// turned into `NNError.fileError` messages that name the path and the reason. The loaders and
/// the model file use these; so can a tool that writes its own files (plots, reports).
public enum FileIO {
    static func reason(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// The bytes of the file at `path`.
    public static func readAll(_ path: String) throws(NNError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .fileError("cannot open '\(path)': \(reason(errno))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .fileError("cannot stat '\(path)': \(reason(errno))") }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw .fileError("cannot read '\(path)': it is a directory") }
        let size = Int(info.st_size)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = 0
            guard let base = buffer.baseAddress else { return }
            while initialized < size {
                let n = read(fd, base + initialized, size - initialized)
                if n > 0 {
                    initialized += n
                } else if n == 0 {
                    break // the file shrank while we read it: keep what is there
                } else if errno != EINTR {
                    failure = errno
                    break
                }
            }
        }
        if failure != 0 { throw .fileError("cannot read '\(path)': \(reason(failure))") }
        return bytes
    }

    /// The bytes of the file at `path`, gunzipped when they start with the gzip magic 1f 8b.
    public static func readAllDecompressing(_ path: String) throws(NNError) -> [UInt8] {
        let raw = try readAll(path)
        guard raw.count >= 2, raw[0] == 0x1F, raw[1] == 0x8B else { return raw }
        return try gunzip(raw, path: path)
    }

    /// Inflates one or more concatenated gzip members.
    static func gunzip(_ input: [UInt8], path: String) throws(NNError) -> [UInt8] {
        var output = [UInt8]()
        if input.count >= 18 {
            // ISIZE, the last member's size mod 2^32: only a capacity hint.
            let n = input.count
            let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
            output.reserveCapacity(min(isize, 1 << 32))
        }
        var stream = z_stream()
        guard czlib_inflate_init_auto(&stream) == Z_OK else {
            throw .fileError("cannot decompress '\(path)': zlib failed to initialise")
        }
        defer { inflateEnd(&stream) }

        let chunk = 1 << 18
        var scratch = [UInt8](repeating: 0, count: chunk)
        var failure: NNError?
        input.withUnsafeBufferPointer { inBuf in
            scratch.withUnsafeMutableBufferPointer { outBuf in
                guard let inBase = inBuf.baseAddress, let outBase = outBuf.baseAddress else { return }
                let total = inBuf.count
                var position = 0 // next input byte not yet handed to zlib
                while true {
                    if stream.avail_in == 0 && position < total {
                        let n = min(total - position, Int(UInt32.max))
                        stream.next_in = UnsafeMutablePointer(mutating: inBase + position)
                        stream.avail_in = UInt32(n)
                        position += n
                    }
                    stream.next_out = outBase
                    stream.avail_out = UInt32(chunk)
                    let rc = inflate(&stream, Z_NO_FLUSH)
                    let produced = chunk - Int(stream.avail_out)
                    if produced > 0 { output.append(contentsOf: UnsafeBufferPointer(start: outBase, count: produced)) }
                    let remaining = Int(stream.avail_in) + (total - position)
                    switch rc {
                    case Z_STREAM_END:
                        // Another gzip member may follow (as `cat a.gz b.gz` makes); anything
                        // else after the end is ignored, as gzip does.
                        let next = total - remaining
                        guard remaining >= 2, inBase[next] == 0x1F, inBase[next + 1] == 0x8B else { return }
                        guard inflateReset(&stream) == Z_OK else {
                            failure = .corruptFile("'\(path)': cannot restart zlib for the next gzip member")
                            return
                        }
                    case Z_OK, Z_BUF_ERROR:
                        if remaining == 0 && stream.avail_out != 0 {
                            failure = .corruptFile("'\(path)' is truncated: the gzip stream ends after \(total) compressed bytes without its end marker")
                            return
                        }
                    case Z_NEED_DICT:
                        failure = .unsupported("'\(path)': zlib stream needs a preset dictionary")
                        return
                    case Z_MEM_ERROR:
                        failure = .fileError("cannot decompress '\(path)': out of memory")
                        return
                    default:
                        let detail = stream.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                        failure = .corruptFile("'\(path)' is not a valid gzip file (\(detail)) at compressed byte \(total - remaining)")
                        return
                    }
                }
            }
        }
        if let failure { throw failure }
        return output
    }

    /// Replaces the file at `path` atomically: `body` writes the content to a new temporary file
    /// in the same directory, which is then flushed to disk (fsync) and renamed over `path`.
    /// Whatever fails, `path` keeps its previous content and the temporary file is removed.
    /// An existing file's permission bits are kept; a new file gets 0666 less the umask.
    public static func writeAtomically(to path: String, _ body: (_ fd: Int32) throws(NNError) -> Void) throws(NNError) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !base.isEmpty else { throw .fileError("cannot write '\(path)': the path names a directory") }

        var existing = stat()
        let existingMode: mode_t? = stat(path, &existing) == 0 ? existing.st_mode & 0o7777 : nil
        if let _ = existingMode, (existing.st_mode & S_IFMT) == S_IFDIR {
            throw .fileError("cannot write '\(path)': it is a directory")
        }

        // A name no other writer uses: pid, clock and attempt; O_EXCL settles any collision.
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var tempPath = ""
        var fd: Int32 = -1
        for attempt in 0..<100 {
            tempPath = "\(directory)/.\(base).tmp-\(getpid())-\(now.tv_sec).\(now.tv_nsec)-\(attempt)"
            fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw .fileError("cannot write '\(path)': cannot create a temporary file in '\(directory)': \(reason(errno))")
        }
        var closed = false
        do throws(NNError) {
            if let mode = existingMode { _ = fchmod(fd, mode) }
            try body(fd)
            guard fsync(fd) == 0 else { throw NNError.fileError("cannot write '\(path)': fsync failed: \(reason(errno))") }
            closed = true
            guard close(fd) == 0 else { throw NNError.fileError("cannot write '\(path)': close failed: \(reason(errno))") }
            guard rename(tempPath, path) == 0 else {
                throw NNError.fileError("cannot write '\(path)': rename from the temporary file failed: \(reason(errno))")
            }
        } catch {
            if !closed { close(fd) }
            unlink(tempPath)
            throw error
        }
        // Make the rename itself durable; a failure here no longer affects the content.
        let dirFD = open(directory, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    /// Writes all of `bytes` to `fd`, retrying short writes; `path` is for the message.
    public static func writeAll(_ bytes: UnsafeRawBufferPointer, to fd: Int32, path: String) throws(NNError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = write(fd, base + done, bytes.count - done)
            if n > 0 {
                done += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                let why = n < 0 ? reason(errno) : "no progress"
                throw .fileError("cannot write '\(path)': \(why) after \(done) of \(bytes.count) bytes")
            }
        }
    }

    /// Atomically replaces the file at `path` with `bytes` (see `writeAtomically(to:_:)`).
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(NNError) {
        try writeAtomically(to: path) { (fd: Int32) throws(NNError) in
            // withUnsafeBytes rethrows untyped errors, so the error is carried out by hand.
            let failure: NNError? = bytes.withUnsafeBytes { raw in
                do throws(NNError) { try writeAll(raw, to: fd, path: path) } catch { return error }
                return nil
            }
            if let failure { throw failure }
        }
    }
}
