// swift-tools-version: 6.2
// 6.2 is the first SwiftPM that lets a package with unsafe flags be used as a versioned
// dependency; the only unsafe flags here are the OpenMP ones found below.

import Foundation
import PackageDescription

// MARK: - OpenMP discovery
//
// CKernels parallelises with `#pragma omp`. Swift's own clang understands -fopenmp but ships
// neither omp.h nor libomp, so the manifest looks for an LLVM OpenMP runtime:
//   1. NNB_OPENMP_PREFIX=<dir> with <dir>/include/omp.h and <dir>/lib/libomp.* (Homebrew's
//      libomp on macOS: $(brew --prefix libomp)); NNB_OPENMP=0 turns OpenMP off.
//   2. Debian/Ubuntu's libomp-dev: /usr/lib/llvm-<any version>/lib/{libomp.so, clang/*/include/omp.h}.
//   3. /usr/local and /opt/homebrew/opt/libomp.
// Without one the package still builds, single-threaded, and the C code emits a #warning
// saying so; nnk_openmp_enabled() then reports 0 ("OpenMP: off").

struct OpenMP {
    var includeDir: String
    var libDir: String
}

func findOpenMP() -> OpenMP? {
    let env = ProcessInfo.processInfo.environment
    let fm = FileManager.default
    if env["NNB_OPENMP"] == "0" { return nil }
    func hasLib(_ dir: String) -> Bool {
        ["libomp.so", "libomp.dylib", "libomp.a"].contains { fm.fileExists(atPath: dir + "/" + $0) }
    }
    if let prefix = env["NNB_OPENMP_PREFIX"] {
        let inc = prefix + "/include", lib = prefix + "/lib"
        if fm.fileExists(atPath: inc + "/omp.h") && hasLib(lib) { return OpenMP(includeDir: inc, libDir: lib) }
        return nil
    }
    // Newest LLVM first, so a machine with several picks one consistently.
    let llvms = ((try? fm.contentsOfDirectory(atPath: "/usr/lib")) ?? [])
        .filter { $0.hasPrefix("llvm-") }
        .sorted { (Int($0.dropFirst(5)) ?? 0) > (Int($1.dropFirst(5)) ?? 0) }
    for llvm in llvms {
        let lib = "/usr/lib/\(llvm)/lib"
        guard hasLib(lib) else { continue }
        let clangDir = lib + "/clang"
        for version in (try? fm.contentsOfDirectory(atPath: clangDir)) ?? [] {
            let inc = "\(clangDir)/\(version)/include"
            if fm.fileExists(atPath: inc + "/omp.h") { return OpenMP(includeDir: inc, libDir: lib) }
        }
    }
    for prefix in ["/usr/local", "/opt/homebrew/opt/libomp", "/usr/local/opt/libomp"] {
        if fm.fileExists(atPath: prefix + "/include/omp.h") && hasLib(prefix + "/lib") {
            return OpenMP(includeDir: prefix + "/include", libDir: prefix + "/lib")
        }
    }
    return nil
}

let openMP = findOpenMP()

// -idirafter, not -I: LLVM's clang/<v>/include also holds that clang's own intrinsic headers,
// which must not shadow the ones of the compiler doing the build.
let kernelCSettings: [CSetting] = openMP.map {
    [.unsafeFlags(["-fopenmp", "-idirafter", $0.includeDir]), .define("NNK_HAVE_OPENMP")]
} ?? []
let kernelLinkerSettings: [LinkerSetting] = openMP.map {
    [.unsafeFlags(["-L\($0.libDir)", "-Xlinker", "-rpath", "-Xlinker", $0.libDir]), .linkedLibrary("omp")]
} ?? []

// MARK: - MPI discovery (optional: data-parallel training, NNBackpropMPI)
//
// Only Sources/CMPI includes mpi.h and links libmpi; the kernels and the core never see it.
//   1. NNB_MPI=0 turns it off; NNB_MPI_PREFIX=<dir> uses <dir>/include/mpi.h and <dir>/lib/libmpi.
//   2. pkg-config ompi-c (Debian's libopenmpi-dev), then `mpicc --showme:compile/link`.
// Without MPI, CMPI builds a shim whose calls fail with a message, so `--distributed` is a
// clear `unsupported` error and `nnb info` says "MPI: off".

struct MPIFlags {
    var compile: [String]
    var link: [String]
}

func run(_ tool: String, _ args: [String]) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [tool] + args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

func findMPI() -> MPIFlags? {
    let env = ProcessInfo.processInfo.environment
    if env["NNB_MPI"] == "0" { return nil }
    func words(_ s: String) -> [String] { s.split(separator: " ").map(String.init) }
    if let prefix = env["NNB_MPI_PREFIX"] {
        guard FileManager.default.fileExists(atPath: prefix + "/include/mpi.h") else { return nil }
        return MPIFlags(compile: ["-I\(prefix)/include"],
                        link: ["-L\(prefix)/lib", "-Xlinker", "-rpath", "-Xlinker", "\(prefix)/lib", "-lmpi"])
    }
    if let c = run("pkg-config", ["--cflags", "ompi-c"]), let l = run("pkg-config", ["--libs", "ompi-c"]) {
        return MPIFlags(compile: words(c), link: words(l))
    }
    if let c = run("mpicc", ["--showme:compile"]), let l = run("mpicc", ["--showme:link"]) {
        return MPIFlags(compile: words(c), link: words(l).filter { !$0.hasPrefix("-Wl,") && $0 != "-pthread" })
    }
    return nil
}

let mpi = findMPI()

let package = Package(
    name: "NNBackprop",
    products: [
        .library(name: "CKernels", targets: ["CKernels"]),
        .executable(name: "nnb-kernels", targets: ["nnb-kernels"]),
        .library(name: "NNBackprop", targets: ["NNBackprop"]),
        .library(name: "NNBackpropMPI", targets: ["NNBackpropMPI"]),
        // libnnbackprop.so, the C API: build it with scripts/build-lib.sh (static Swift runtime,
        // only nnb_ symbols exported).
        .library(name: "nnbackprop", type: .dynamic, targets: ["NNBackpropCAPI"]),
        .executable(name: "nnb", targets: ["nnb"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "CKernels",
            path: "CKernels",
            cSettings: kernelCSettings + [.headerSearchPath(".")],
            linkerSettings: kernelLinkerSettings + [.linkedLibrary("m", .when(platforms: [.linux]))]
        ),
        // Kernel self-check and GEMM benchmark.
        .executableTarget(
            name: "nnb-kernels",
            dependencies: ["CKernels", "CKernelsCheck"],
            path: "Sources/nnb-kernels"
        ),
        // The kernel test suite, written in C so the same files also run on arm64 under qemu
        // (see Makefile: test-arm64). XCTest drives it on the host.
        .target(
            name: "CKernelsCheck",
            dependencies: ["CKernels"],
            path: "Tests/CKernelsCheck"
        ),
        .testTarget(
            name: "CKernelsTests",
            dependencies: ["CKernels", "CKernelsCheck"],
            path: "Tests/CKernelsTests"
        ),
        // The system zlib, for gzipped IDX files (Fashion-MNIST ships as .gz).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .target(name: "NNBackprop", dependencies: ["CKernels", "CZlib"], path: "Sources/NNBackprop"),
        .testTarget(name: "NNBackpropTests", dependencies: ["NNBackprop", "NNBackpropCAPI"], path: "Tests/NNBackpropTests"),
        // include/nnbackprop.h as a module, so the C API is implemented with the header's own types.
        .systemLibrary(name: "CNNBackprop", path: "include"),
        // The C API: one @c function per call in include/nnbackprop.h, on top of NNBackprop.
        .target(name: "NNBackpropCAPI", dependencies: ["NNBackprop", "NNBackpropMPI", "CNNBackprop", "CKernels"],
                path: "Sources/NNBackpropCAPI"),
        // The MPI shim (see "MPI discovery" above) and data-parallel training over it.
        .target(
            name: "CMPI",
            path: "Sources/CMPI",
            cSettings: mpi.map { [.unsafeFlags($0.compile), .define("NNB_HAVE_MPI")] } ?? [],
            linkerSettings: mpi.map { [.unsafeFlags($0.link)] } ?? []
        ),
        .target(name: "NNBackpropMPI", dependencies: ["NNBackprop", "CMPI"], path: "Sources/NNBackpropMPI"),
        // The command-line tool: train, predict, evaluate, info, bench.
        .executableTarget(
            name: "nnb",
            dependencies: ["NNBackprop", "NNBackpropCAPI", "NNBackpropMPI",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/nnb"
        ),
        // Runs the built nnb binary as a child process (the dependency makes SwiftPM build it).
        .testTarget(name: "NNBCommandTests", dependencies: ["nnb", "NNBackprop"], path: "Tests/NNBCommandTests"),
    ],
    cLanguageStandard: .c11
)
