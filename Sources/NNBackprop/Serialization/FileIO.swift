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

    /// The most bytes a gzipped file may inflate to by default: 1 GiB, past the largest
    /// MNIST-family file (EMNIST ByClass, 547 MB of images). A small file that inflates past
    /// it is far more likely a gzip bomb than data.
    public static let defaultMaxDecompressedBytes = 1 << 30

    /// The bytes of the file at `path`, gunzipped when they start with the gzip magic 1f 8b.
    /// Throws `unsupported` when the content inflates past `maxDecompressedBytes`; the check
    /// is made as the stream is inflated, so no more than that is ever held.
    public static func readAllDecompressing(_ path: String,
                                            maxDecompressedBytes: Int = defaultMaxDecompressedBytes) throws(NNError) -> [UInt8] {
        let raw = try readAll(path)
        guard raw.count >= 2, raw[0] == 0x1F, raw[1] == 0x8B else { return raw }
        return try gunzip(raw, path: path, limit: maxDecompressedBytes)
    }

    /// Inflates one or more concatenated gzip members, refusing output past `limit` bytes.
    static func gunzip(_ input: [UInt8], path: String, limit: Int = defaultMaxDecompressedBytes) throws(NNError) -> [UInt8] {
        var output = [UInt8]()
        if input.count >= 18 {
            // ISIZE, the last member's size mod 2^32, is written by whoever made the file: only
            // a hint, bounded by what the input can really produce (deflate's best ratio is
            // 1032:1) and by the limit, so a 53-byte file claiming 4 GiB reserves 54 KB.
            let n = input.count
            let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
            output.reserveCapacity(min(isize, n * 1032, limit))
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
                    guard produced <= limit - output.count else {
                        failure = .unsupported("'\(path)' inflates to more than \(limit) bytes, the most a gzipped input may (maxDecompressedBytes); refusing it as a likely gzip bomb")
                        return
                    }
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

    /// Where a write to a path lands: the file itself after following symbolic links, split
    /// into its directory and name, and what the file there now has that a replacement keeps.
    struct WriteTarget {
        var path: String
        var directory: String
        var name: String
        /// Permission bits, owner and group of the existing file (nil: no file yet).
        var existing: (mode: mode_t, uid: uid_t, gid: gid_t)?
    }

    /// Checks that `path` can be written by `writeAtomically` without writing anything: its
    /// folder exists and is writable, and whatever is at the path (after following symbolic
    /// links) is a regular file this process may write. Tools call it before long work whose
    /// result goes there, so a bad path fails at once rather than after training.
    public static func checkWritable(_ path: String) throws(NNError) {
        _ = try writeTarget(path)
    }

    static func writeTarget(_ path: String) throws(NNError) -> WriteTarget {
        guard !path.isEmpty else { throw .fileError("cannot write '': the path is empty") }
        var target = path
        var existing: (mode: mode_t, uid: uid_t, gid: gid_t)?
        var resolved = false
        // A symbolic link is written through, as editors and `cp` do: its target is replaced
        // atomically and the link stays a link. 40 hops is the kernel's own limit.
        for _ in 0..<40 {
            var info = stat()
            guard lstat(target, &info) == 0 else {
                guard errno == ENOENT else { throw .fileError("cannot write '\(path)': \(reason(errno))") }
                resolved = true
                break
            }
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(target, &buffer, buffer.count - 1)
                guard n > 0 else { throw .fileError("cannot write '\(path)': cannot read the symbolic link '\(target)': \(reason(errno))") }
                let link = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                target = link.hasPrefix("/") ? link : split(target).directory + "/" + link
                continue
            case S_IFREG:
                guard access(target, W_OK) == 0 else {
                    throw .fileError("cannot write '\(path)': the existing file\(target == path ? "" : " '\(target)'") is not writable (\(reason(errno))); refusing to replace it")
                }
                existing = (info.st_mode & 0o7777, info.st_uid, info.st_gid)
            case S_IFDIR:
                throw .fileError("cannot write '\(path)': \(target == path ? "it" : "'\(target)'") is a directory")
            default:
                let kind = [S_IFCHR: "a character device", S_IFBLK: "a block device", S_IFIFO: "a named pipe",
                            S_IFSOCK: "a socket"][info.st_mode & S_IFMT] ?? "not a regular file"
                throw .fileError("cannot write '\(path)': \(target == path ? "it" : "'\(target)'") is \(kind), not a regular file; refusing to replace it")
            }
            resolved = true
            break
        }
        guard resolved else { throw .fileError("cannot write '\(path)': too many levels of symbolic links") }
        let (directory, name) = split(target)
        guard !name.isEmpty else { throw .fileError("cannot write '\(path)': the path names a directory") }
        guard access(directory, W_OK | X_OK) == 0 else {
            throw .fileError("cannot write '\(path)': the folder '\(directory)' \(errno == ENOENT ? "does not exist" : "is not writable (\(reason(errno)))")")
        }
        return WriteTarget(path: target, directory: directory, name: name, existing: existing)
    }

    /// The directory and last component of a path ("." for a bare name).
    private static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = slash == path.startIndex ? "/" : String(path[..<slash])
        return (directory, String(path[path.index(after: slash)...]))
    }

    /// The prefix of the temporary files that `writeAtomically` makes beside `name`:
    /// `.NAME.nnb-tmp-PID-...`, so that a stale one (its writer was killed) is recognizable.
    static func temporaryPrefix(for name: String) -> String { ".\(name).nnb-tmp-" }

    /// Removes temporaries of `name` in `directory` left by writers that no longer run (a
    /// `kill -9` during a save). A live writer's temporary is never touched.
    static func removeStaleTemporaries(of name: String, in directory: String) {
        guard let dir = opendir(directory) else { return }
        defer { closedir(dir) }
        let prefix = temporaryPrefix(for: name)
        while let entry = readdir(dir) {
            // d_name is NUL-terminated; the bytes after the NUL are not defined.
            let entryName = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            guard entryName.hasPrefix(prefix),
                  let pid = Int32(entryName.dropFirst(prefix.count).prefix { $0 != "-" }), pid > 0,
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            unlink(directory + "/" + entryName)
        }
    }

    /// Replaces the file at `path` atomically: `body` writes the content to a new temporary file
    /// in the same directory, which is then flushed to disk (fsync) and renamed over `path`.
    /// Whatever fails, `path` keeps its previous content and the temporary file is removed; one
    /// left by a killed writer is removed by the next save to the same path.
    ///
    /// What is at `path` is checked first (`checkWritable`): a symbolic link is written through
    /// (its target is replaced and the link kept); a directory, a device, a pipe or a socket is
    /// refused, and so is an existing file this process may not write (the rename would
    /// otherwise replace a read-only file in a writable folder). The replacement keeps the
    /// existing file's permission bits (and, when run as root, its owner); a new file gets 0666
    /// less the umask.
    public static func writeAtomically(to path: String, _ body: (_ fd: Int32) throws(NNError) -> Void) throws(NNError) {
        let target = try writeTarget(path)
        removeStaleTemporaries(of: target.name, in: target.directory)

        // A name no other writer uses: pid, clock and attempt; O_EXCL settles any collision.
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var tempPath = ""
        var fd: Int32 = -1
        for attempt in 0..<100 {
            tempPath = "\(target.directory)/\(temporaryPrefix(for: target.name))\(getpid())-\(now.tv_sec).\(now.tv_nsec)-\(attempt)"
            fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw .fileError("cannot write '\(path)': cannot create a temporary file in '\(target.directory)': \(reason(errno))")
        }
        var closed = false
        do throws(NNError) {
            if let existing = target.existing {
                if geteuid() == 0 { _ = fchown(fd, existing.uid, existing.gid) }
                _ = fchmod(fd, existing.mode)
            }
            try body(fd)
            guard fsync(fd) == 0 else { throw NNError.fileError("cannot write '\(path)': fsync failed: \(reason(errno))") }
            closed = true
            guard close(fd) == 0 else { throw NNError.fileError("cannot write '\(path)': close failed: \(reason(errno))") }
            guard rename(tempPath, target.path) == 0 else {
                throw NNError.fileError("cannot write '\(path)': rename from the temporary file failed: \(reason(errno))")
            }
        } catch {
            if !closed { close(fd) }
            unlink(tempPath)
            throw error
        }
        // Make the rename itself durable; a failure here no longer affects the content.
        let dirFD = open(target.directory, O_RDONLY | O_CLOEXEC)
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
