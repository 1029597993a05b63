/// Checked size arithmetic for sizes read from files and callers: every product and sum that
/// sizes a buffer goes through here, so a hostile header is an error, never a trap.
enum Sizes {
    /// The product of `dims`, or nil when a dimension is negative or the product of the
    /// non-zero dimensions overflows or exceeds `limit`. Zeros do not hide an overflow: a
    /// shape (0, 2^40, 2^40) is refused, because any sub-product of it (a row width, say)
    /// would overflow.
    static func product(_ dims: some Sequence<Int>, limit: Int = .max) -> Int? {
        var nonZero = 1
        var hasZero = false
        for d in dims {
            guard d >= 0 else { return nil }
            if d == 0 { hasZero = true; continue }
            let (p, overflow) = nonZero.multipliedReportingOverflow(by: d)
            guard !overflow, p <= limit else { return nil }
            nonZero = p
        }
        return hasZero ? 0 : nonZero
    }

    /// a * b, or nil on overflow.
    static func product(_ a: Int, _ b: Int) -> Int? {
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? nil : p
    }

    /// a + b, or nil on overflow.
    static func sum(_ a: Int, _ b: Int) -> Int? {
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : s
    }
}
