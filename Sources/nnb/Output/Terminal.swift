import NNBackprop
import Foundation

/// Standard output as the command uses it: whether it is a terminal, unbuffered writes for
/// redrawn lines, and number and time formats shared by the reports.
enum Terminal {
    /// Whether standard output is a terminal (progress bars) rather than a file or a pipe.
    static var isTerminal: Bool { isatty(STDOUT_FILENO) != 0 }

    /// The terminal's width in columns, or nil when it cannot be told.
    static var columns: Int? {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return ProcessInfo.processInfo.environment["COLUMNS"].flatMap { Int($0) }
    }

    /// Writes `text` to standard output now (no newline added).
    static func write(_ text: String) {
        print(text, terminator: "")
        fflush(nil)
    }

    /// Writes a line to standard error.
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Seconds on a monotonic clock.
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}

/// 1234567 -> "1,234,567".
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return value < 0 ? "-" + out : out
}

/// A rate such as samples per second, grouped and rounded: "48,211".
func rate(_ value: Double) -> String {
    value.isFinite ? grouped(Int(value.rounded())) : "-"
}

/// A duration: "0.84 s", "12.3 s", "2:05", "1:02:05".
func duration(_ seconds: Double) -> String {
    guard seconds.isFinite && seconds >= 0 else { return "-" }
    if seconds < 10 { return String(format: "%.2f s", seconds) }
    if seconds < 60 { return String(format: "%.1f s", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%d:%02d", s / 60, s % 60) }
    return String(format: "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60)
}

/// A metric for a report: accuracies as percentages, other values to 4 decimals (4 significant
/// digits from 1000 up).
func formatMetric(_ name: String, _ value: Double) -> String {
    if name.hasSuffix("accuracy") { return String(format: "%.2f%%", value * 100) }
    return String(format: abs(value) < 1000 ? "%.4f" : "%.4g", value)
}

/// "1 thread", "2 threads": the kernels' thread count.
func threadCount() -> String {
    let n = Runtime.threads
    return n == 1 ? "1 thread" : "\(n) threads"
}
