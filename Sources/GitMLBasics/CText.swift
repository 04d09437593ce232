/// Text from C structures.
public enum CText {
    /// A NUL-terminated string stored in a fixed-size C array (a `dirent`'s name, a `utsname` field).
    public static func string<T>(fixed value: T) -> String {
        withUnsafeBytes(of: value) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
