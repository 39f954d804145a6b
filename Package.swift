// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "otk",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "otk", targets: ["otk"]),
        .executable(name: "otk-launcher", targets: ["otk-launcher"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // Value types shared by every module; no syscalls.
        .target(name: "OTKModel"),
        // TOML profiles -> model, with `extends` and file:line errors; no syscalls.
        .target(name: "OTKConfig", dependencies: [
            "OTKModel",
            .product(name: "TOMLKit", package: "TOMLKit"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Plans (JSON): strict parsing and validation; safe materialization (syscalls only in PlanMaterializer.swift).
        .target(name: "OTKPlan", dependencies: ["OTKModel", "OTKConfig"]),
        // The supervisor: host facts, launch spec, spawning otk-launcher, doctor.
        .target(name: "COTKSystem"),
        // libseccomp compiles the seccomp policy into BPF in the supervisor.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // The egress proxy of network mode `proxy`: HTTP CONNECT and plain HTTP on a unix socket, allowlist
        // and address checks, a record of every connection. SwiftNIO parses HTTP and TLS ClientHellos.
        .target(name: "OTKProxy", dependencies: [
            "OTKModel",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ], swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "OTKSandbox", dependencies: ["OTKModel", "OTKConfig", "COTKSystem", "CSeccomp", "OTKProxy"]),
        // `otk execute` and `otk run`: a parsed plan -> stack, phases, toolchains, caches -> sandboxed runs.
        .target(name: "OTKPipeline", dependencies: ["OTKModel", "OTKConfig", "OTKPlan", "OTKSandbox"]),
        .executableTarget(name: "otk", dependencies: [
            "OTKModel", "OTKConfig", "OTKSandbox", "OTKPlan", "OTKPipeline",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The small C program that performs the launch sequence.
        // Linked fully static: it must start fast and depend on nothing but the kernel.
        .executableTarget(name: "otk-launcher", cSettings: [.unsafeFlags(["-O2", "-Wall", "-Wextra", "-Werror"])],
                          linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // Test-only: reports from inside a sandbox what it can and cannot do.
        // Static too: it runs inside sandboxes that see only a few host paths.
        .executableTarget(name: "otk-probe", cSettings: [.unsafeFlags(["-Wall", "-Wextra"])],
                          linkerSettings: [.unsafeFlags(["-static-executable"])]),
        .testTarget(name: "OTKConfigTests", dependencies: ["OTKConfig", "OTKModel", "OTKSandbox"]),
        .testTarget(name: "OTKProxyTests", dependencies: ["OTKProxy", "OTKModel"]),
        .testTarget(name: "OTKPlanTests", dependencies: ["OTKPlan", "OTKModel", "OTKConfig"]),
        .testTarget(name: "OTKIntegrationTests", dependencies: ["OTKModel"]),
    ]
)
