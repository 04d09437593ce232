import ArgumentParser
import Foundation
import GitMLBasics
import GitMLLineage
import GitMLRegistry

/// Options every command takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .customShort("C"), help: ArgumentHelp("Run as if started in <path>.", valueName: "path"))
    var directory: String?
}

/// `--json` for read commands.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON (a documented, versioned contract) instead of text.")
    var json = false
}

/// The command's view of the world: where it runs, its environment, how to print.
struct Context {
    let currentDirectory: String
    let environment: [String: String]
    let json: Bool

    init(_ common: CommonOptions, json: Bool = false) throws {
        let base = FileManager.default.currentDirectoryPath
        var directory = base
        if let path = common.directory {
            directory = RepositoryPath.normalize(path.hasPrefix("/") ? path : base + "/" + path)
            guard FileManager.default.fileExists(atPath: directory) else { throw PathError.notFound(path: path) }
        }
        currentDirectory = directory
        environment = ProcessInfo.processInfo.environment
        self.json = json
    }

    func workspace(requireInitialized: Bool = true) throws -> Workspace {
        try Workspace(
            currentDirectory: currentDirectory, environment: environment, requireInitialized: requireInitialized)
    }

    var color: Bool { environment["NO_COLOR"] == nil && isatty(1) == 1 && environment["TERM"] != "dumb" }

    func paint(_ text: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }

    /// A progress reporter for stderr, only when stderr is a terminal.
    var progress: (@Sendable (HashProgress) -> Void)? {
        guard isatty(2) == 1 else { return nil }
        return { p in
            let mib = { (n: Int64) in String(format: "%.1f", Double(n) / 1_048_576) }
            let percent = p.bytesTotal > 0 ? Int(Double(p.bytesDone) * 100 / Double(p.bytesTotal)) : 100
            var line =
                "\r\(p.verb) \(mib(p.bytesDone))/\(mib(p.bytesTotal)) MiB (\(percent)%), \(p.filesDone)/\(p.filesTotal) files"
            if p.filesDone == p.filesTotal && p.bytesDone >= p.bytesTotal { line += "\n" }
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}

func printError(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

/// A git-ml command: does its work in `execute`, and leaves the reporting of errors to one place.
protocol GitMLCommand: ParsableCommand {
    /// Returns the exit status.
    func execute() throws -> Int32
    var wantsJSON: Bool { get }
}

extension GitMLCommand {
    var wantsJSON: Bool { false }

    mutating func run() throws {
        let status: Int32
        do {
            status = try PerformanceTrace.measure("git ml \(Self._commandName)") { try execute() }
        } catch let error as GitMLError {
            report(code: error.code, message: error.message, hint: error.hint)
            throw ExitCode(error.exitStatus)
        } catch let error as ExitCode {
            throw error
        } catch let error as ValidationError {
            // A usage mistake found once the repository was read (a remote named but nothing to pull): exit 64.
            report(code: "usage", message: error.message, hint: "see git ml \(Self._commandName) --help")
            throw ExitCode(ExitStatus.usage)
        } catch {
            report(code: "internal-error", message: "\(error)", hint: "")
            throw ExitCode(ExitStatus.operational)
        }
        if status != 0 { throw ExitCode(status) }
    }

    private func report(code: String, message: String, hint: String) {
        if wantsJSON {
            let value: JSONValue = .object([
                "error": .object(["code": .string(code), "message": .string(message), "hint": .string(hint)])
            ])
            print(JSONWriter.compact(value))
        }
        printError("error: \(TerminalText.escape(message))")
        if !hint.isEmpty { printError("hint: \(TerminalText.escape(hint))") }
    }
}

/// Formats a number for tables: integers plainly, others with up to 6 significant digits.
func formatNumber(_ value: JSONValue) -> String {
    switch value {
    case .int(let i): return String(i)
    case .double(let d): return NumberText.format(d)
    default: return value.description
    }
}

/// Left-aligned columns for terminal tables.
func table(_ rows: [[String]]) -> String { TerminalText.table(rows) }

/// `name=number` or a bare number, both at least 0 (`--tolerance acc=0.002`, `--threshold psi=0.25`): parsed by the
/// parser, so a bad value is a usage error (exit 64) with the usage line.
struct NamedNumber: ExpressibleByArgument, Sendable {
    var name: String?
    var value: Double

    init?(argument: String) {
        let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard let text = parts.last, let value = Double(text), value.isFinite, value >= 0 else { return nil }
        if parts.count == 2 {
            guard !parts[0].isEmpty else { return nil }
            name = String(parts[0])
        }
        self.value = value
    }
}

/// Stages on the command line (`--to staging`): a bad one is a usage error.
extension Stage: ExpressibleByArgument {
    public static var allValueStrings: [String] { ["staging", "production"] }

    public init?(argument: String) {
        guard let stage = try? Stage.target(argument) else { return nil }
        self = stage
    }
}

/// The formats a card is written in.
enum CardFormat: String, ExpressibleByArgument, CaseIterable {
    case md, html
}

/// The formats a drift report is written in.
enum DriftFormat: String, ExpressibleByArgument, CaseIterable {
    case text, md, html, json, csv
}
