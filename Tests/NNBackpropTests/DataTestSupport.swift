import Foundation
import NNBackprop
import XCTest

/// Temporary directories and python3 helpers for the data and file-format tests: numpy and
/// plain python write the reference files that the Swift readers must accept.
enum DataTestSupport {
    /// A fresh empty directory under the system temp directory.
    static func makeTempDirectory(_ label: String = #function) throws -> String {
        let clean = label.filter { $0.isLetter || $0.isNumber }
        let path = NSTemporaryDirectory() + "nnb-\(clean)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Runs `python3 -c script args...`; returns stdout. Throws XCTSkip when python3 (or a
    /// module the script needs, per `requires`) is missing, and fails on a non-zero exit.
    @discardableResult
    static func python(_ script: String, _ args: [String] = [], requires: [String] = []) throws -> String {
        for module in requires {
            guard (try? runProcess(["python3", "-c", "import \(module)"]))?.status == 0 else {
                throw XCTSkip("python3 with \(module) is not available")
            }
        }
        let result = try runProcess(["python3", "-c", script] + args)
        guard result.status == 0 else {
            throw NSError(domain: "python3", code: Int(result.status),
                          userInfo: [NSLocalizedDescriptionKey: "python3 failed (\(result.status)): \(result.stderr)"])
        }
        return result.stdout
    }

    private static func runProcess(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func read(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

/// Asserts that `body` throws the `NNError` case `kind` (e.g. `NNError.invalidData`) with a
/// message that contains every string in `mentions`; returns the message.
@discardableResult
func assertNNError<T>(_ kind: (String) -> NNError, mentions: [String] = [], file: StaticString = #filePath,
                      line: UInt = #line, _ body: () throws -> T) -> String? {
    let expected = kind("").kind
    do {
        _ = try body()
        XCTFail("expected a '\(expected)' error, got success", file: file, line: line)
        return nil
    } catch let error as NNError {
        XCTAssertEqual(error.kind, expected, "wrong kind of error: \(error)", file: file, line: line)
        for m in mentions {
            XCTAssertTrue(error.message.contains(m), "message \"\(error.message)\" does not mention \"\(m)\"",
                          file: file, line: line)
        }
        return error.message
    } catch {
        XCTFail("expected NNError, got \(error)", file: file, line: line)
        return nil
    }
}
