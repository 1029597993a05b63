/// The errors NNBackprop throws for anything a caller or a file can get wrong.
///
/// Each case carries a complete, human-readable message that names the offending value, says
/// what was expected, and says where: the file, and the row and column when they are known
/// (files as `path:line:column`, 1-based like an editor; in-memory arrays as `features[row 3,
/// column 7]`, 0-based like Swift). `description` is that message prefixed by the kind, so
/// `print(error)` is enough for a user. Programmer errors inside the library are
/// `precondition`s, never these.
public enum NNError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Two shapes that must agree do not (feature counts, tensor shapes, buffer sizes).
    case shapeMismatch(String)
    /// An argument is outside its allowed range (a fraction outside (0, 1), a zero width...).
    case invalidArgument(String)
    /// The values themselves are wrong: NaN or infinity, a class index out of range, empty data,
    /// a cell that is not a number.
    case invalidData(String)
    /// A file could not be opened, read, written or renamed (missing, unreadable, disk full).
    case fileError(String)
    /// A file was read but its content is truncated or garbled.
    case corruptFile(String)
    /// A well-formed input that this library does not handle (a Fortran-order or big-endian
    /// `.npy`, an unknown dtype).
    case unsupported(String)
    /// A name that matches nothing known (a column, a layer, a loss, a preprocessing kind).
    case unknownName(String)
    /// A name that is taken already (registering a plugin twice).
    case duplicateName(String)
    /// A struct, file or plugin built for another version of the interface.
    case versionMismatch(String)
    /// A plugin library that cannot be loaded, lacks its entry point, or whose entry failed.
    case pluginError(String)
    /// Training produced a non-finite loss or non-finite parameters (a learning rate too large,
    /// exploding gradients, a plugin returning NaN). The model keeps its last finite weights.
    case diverged(String)

    /// The message without the kind.
    public var message: String {
        switch self {
        case .shapeMismatch(let m), .invalidArgument(let m), .invalidData(let m), .fileError(let m),
             .corruptFile(let m), .unsupported(let m), .unknownName(let m), .duplicateName(let m),
             .versionMismatch(let m), .pluginError(let m), .diverged(let m):
            return m
        }
    }

    /// A short name for the kind of error ("shape mismatch", "corrupt file", ...).
    public var kind: String {
        switch self {
        case .shapeMismatch: return "shape mismatch"
        case .invalidArgument: return "invalid argument"
        case .invalidData: return "invalid data"
        case .fileError: return "file error"
        case .corruptFile: return "corrupt file"
        case .unsupported: return "unsupported"
        case .unknownName: return "unknown name"
        case .duplicateName: return "duplicate name"
        case .versionMismatch: return "version mismatch"
        case .pluginError: return "plugin error"
        case .diverged: return "training diverged"
        }
    }

    public var description: String { "\(kind): \(message)" }

    /// The same error with `context` (typically a file path) put in front of the message, for
    /// loaders that rethrow a validation error with the file it came from.
    public func prefixed(_ context: String) -> NNError {
        let m = context + ": " + message
        switch self {
        case .shapeMismatch: return .shapeMismatch(m)
        case .invalidArgument: return .invalidArgument(m)
        case .invalidData: return .invalidData(m)
        case .fileError: return .fileError(m)
        case .corruptFile: return .corruptFile(m)
        case .unsupported: return .unsupported(m)
        case .unknownName: return .unknownName(m)
        case .duplicateName: return .duplicateName(m)
        case .versionMismatch: return .versionMismatch(m)
        case .pluginError: return .pluginError(m)
        case .diverged: return .diverged(m)
        }
    }
}
