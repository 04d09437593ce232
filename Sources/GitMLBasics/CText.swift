#if canImport(Glibc)
    import Glibc
#endif

/// Text from C structures.
public enum CText {
    /// A NUL-terminated string stored in a fixed-size C array (a `dirent`'s name, a `utsname` field).
    public static func string<T>(fixed value: T) -> String {
        withUnsafeBytes(of: value) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// The entry names left in an open directory stream, without `.` and `..`.
    public static func entryNames(_ directory: OpaquePointer) -> [String] {
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = string(fixed: entry.pointee.d_name)
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
