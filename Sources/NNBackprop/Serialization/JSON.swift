/// A JSON value with object keys in file order and numbers kept as their text.
///
/// The safetensors header is read with this small strict parser rather than Foundation's
/// JSONSerialization because the header's key order is the tensors' order (which a model file
/// keeps), duplicate keys must be rejected, and offsets must be read as exact 64-bit integers,
/// none of which JSONSerialization's dictionaries and NSNumbers can promise.
indirect enum JSONValue {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// The value as a non-negative integer when it is a number written with digits only.
    var unsignedInteger: UInt64? {
        guard case .number(let text) = self, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(text)
    }

    /// A short description of the kind of value, for error messages.
    var kindName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// A strict RFC 8259 parser over UTF-8 bytes, depth-limited so that hostile input cannot
/// exhaust the stack. Errors are `corruptFile` messages with the byte offset.
struct JSONParser {
    private let bytes: [UInt8]
    private var i = 0
    private var depth = 0
    static let maxDepth = 64

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Parses one value followed only by whitespace.
    static func parse(_ bytes: [UInt8]) throws(NNError) -> JSONValue {
        var p = JSONParser(bytes)
        let v = try p.value()
        p.skipSpace()
        guard p.i == bytes.count else { throw p.fail("unexpected text after the JSON value") }
        return v
    }

    private func fail(_ what: String) -> NNError { .corruptFile("\(what) at byte \(i)") }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func value() throws(NNError) -> JSONValue {
        skipSpace()
        guard i < bytes.count else { throw fail("unexpected end of JSON") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[i])))' in JSON")
        }
    }

    private mutating func literal(_ word: String, _ v: JSONValue) throws(NNError) -> JSONValue {
        guard bytes[i...].starts(with: word.utf8) else { throw fail("invalid JSON literal") }
        i += word.utf8.count
        return v
    }

    private mutating func enter() throws(NNError) {
        depth += 1
        guard depth <= JSONParser.maxDepth else { throw fail("JSON nested deeper than \(JSONParser.maxDepth) levels") }
    }

    private mutating func object() throws(NNError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var members = [(key: String, value: JSONValue)]()
        var seen = Set<String>()
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key in JSON object") }
            let key = try string()
            guard seen.insert(key).inserted else { throw fail("duplicate key '\(key)' in JSON object") }
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after key '\(key)'") }
            i += 1
            members.append((key, try value()))
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end of JSON inside an object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("expected ',' or '}' in JSON object")
        }
    }

    private mutating func array() throws(NNError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var items = [JSONValue]()
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            items.append(try value())
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end of JSON inside an array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("expected ',' or ']' in JSON array")
        }
    }

    private mutating func number() throws(NNError) -> JSONValue {
        let start = i
        func digits(_ p: inout JSONParser) -> Int {
            let s = p.i
            while p.i < p.bytes.count, p.bytes[p.i] >= 0x30 && p.bytes[p.i] <= 0x39 { p.i += 1 }
            return p.i - s
        }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        let intStart = i
        let n = digits(&self)
        guard n > 0 else { throw fail("invalid JSON number") }
        guard !(n > 1 && bytes[intStart] == 0x30) else { throw fail("JSON number with a leading zero") }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digits(&self) > 0 else { throw fail("invalid JSON number") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { throw fail("invalid JSON number") }
        }
        return .number(String(decoding: bytes[start..<i], as: UTF8.self))
    }

    private mutating func hex4() throws(NNError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("truncated \\u escape in JSON string") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape in JSON string")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private mutating func string() throws(NNError) -> String {
        i += 1 // opening quote
        var out = [UInt8]()
        while true {
            guard i < bytes.count else { throw fail("unterminated JSON string") }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("control character in JSON string") }
            if c != UInt8(ascii: "\\") {
                out.append(c)
                i += 1
                continue
            }
            i += 1
            guard i < bytes.count else { throw fail("unterminated JSON string") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate in JSON string")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in JSON string") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid code point in JSON string") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))' in JSON string")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in JSON string") }
        return s
    }
}

/// JSON text for a string, quoted and escaped.
func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where u.value < 0x20:
            let h = String(u.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}
